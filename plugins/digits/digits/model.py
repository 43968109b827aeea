"""Softmax regression in numpy, its data split and its checkpoint format.

The checkpoint is plain ``.npz`` + JSON (no pickle): loading a model must never run code.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CHECKPOINT_FILES = ("model.npz", "meta.json")


def load_split(test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits, shuffled and split deterministically."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = data.data.astype(np.float64)
    y = data.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    n_test = int(round(len(x) * test_fraction))
    return x[n_test:], y[n_test:], x[:n_test], y[:n_test]


@dataclass
class SoftmaxModel:
    weights: np.ndarray  # (features, classes)
    bias: np.ndarray  # (classes,)
    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def init(cls, x: np.ndarray, classes: int, seed: int) -> SoftmaxModel:
        rng = np.random.default_rng(seed)
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale[scale == 0] = 1.0
        return cls(rng.normal(0, 0.01, (x.shape[1], classes)), np.zeros(classes), mean, scale)

    def _z(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.scale

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        logits = self._z(x) @ self.weights + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.probabilities(x).argmax(axis=1)

    def loss(self, x: np.ndarray, y: np.ndarray, l2: float) -> float:
        p = self.probabilities(x)
        nll = -np.log(p[np.arange(len(y)), y] + 1e-12).mean()
        return float(nll + 0.5 * l2 * (self.weights**2).sum())

    def step(self, x: np.ndarray, y: np.ndarray, lr: float, l2: float) -> None:
        p = self.probabilities(x)
        p[np.arange(len(y)), y] -= 1.0
        grad_w = self._z(x).T @ p / len(y) + l2 * self.weights
        self.weights -= lr * grad_w
        self.bias -= lr * p.mean(axis=0)

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        return float((self.predict(x) == y).mean())

    # -- checkpoint ----------------------------------------------------------------------------

    def save(self, directory: Path, meta: dict) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(directory / "model.npz", weights=self.weights, bias=self.bias, mean=self.mean, scale=self.scale)
        (directory / "meta.json").write_text(json.dumps(meta, indent=2))
        return directory

    @classmethod
    def load(cls, path: str | Path) -> SoftmaxModel:
        """From a checkpoint directory, a ``model.npz`` file, or a ``model.zip`` archive."""
        p = Path(path)
        if p.is_file() and p.suffix == ".zip":
            with zipfile.ZipFile(p) as zf, zf.open("model.npz") as f:
                arrays = np.load(f, allow_pickle=False)
                return cls(*(np.array(arrays[k]) for k in ("weights", "bias", "mean", "scale")))
        npz = p / "model.npz" if p.is_dir() else p
        if not npz.is_file():
            found = sorted(q.name for q in p.iterdir()) if p.is_dir() else []
            raise FileNotFoundError(f"no model.npz in {p} (found: {found})")
        with np.load(npz, allow_pickle=False) as arrays:
            return cls(*(np.array(arrays[k]) for k in ("weights", "bias", "mean", "scale")))


def zip_checkpoint(directory: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in CHECKPOINT_FILES:
            zf.write(directory / name, name)
    return target
