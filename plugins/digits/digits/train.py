"""Train softmax regression on the digits, reporting progress and metrics every epoch."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from synapse_runtime import BaseAction, ExecutionError

from .model import SoftmaxModel, load_split, zip_checkpoint


class TrainParams(BaseModel):
    epochs: int = Field(20, ge=1, le=1000, description="passes over the training split")
    learning_rate: float = Field(0.1, gt=0, le=10)
    batch_size: int = Field(64, ge=1, le=4096)
    l2: float = Field(1e-4, ge=0)
    test_fraction: float = Field(0.2, gt=0, lt=1)
    seed: int = 0
    min_accuracy: float = Field(0.0, ge=0, le=1, description="fail the run below this validation accuracy")


class TrainAction(BaseAction[TrainParams]):
    """Trains, checkpoints to ``<output>/checkpoint`` and ``<output>/model.zip``."""

    def execute(self) -> dict:
        p = self.params
        x_train, y_train, x_val, y_val = load_split(p.test_fraction, p.seed)
        model = SoftmaxModel.init(x_train, classes=10, seed=p.seed)
        if self.ctx.checkpoint and self.ctx.checkpoint.get("path"):
            model = SoftmaxModel.load(self.ctx.checkpoint["path"])
            self.log_message(f"warm start from checkpoint {self.ctx.checkpoint.get('uri')}", "info")
        rng = np.random.default_rng(p.seed)
        started = time.perf_counter()
        for epoch in range(1, p.epochs + 1):
            order = rng.permutation(len(x_train))
            for start in range(0, len(order), p.batch_size):
                batch = order[start : start + p.batch_size]
                model.step(x_train[batch], y_train[batch], p.learning_rate, p.l2)
            metrics = {
                "epoch": epoch,
                "loss": round(model.loss(x_train, y_train, p.l2), 5),
                "train_accuracy": round(model.accuracy(x_train, y_train), 4),
                "val_accuracy": round(model.accuracy(x_val, y_val), 4),
            }
            self.set_metrics(metrics, "train")
            self.set_progress(epoch, p.epochs, "train")
        val_accuracy = model.accuracy(x_val, y_val)
        if val_accuracy < p.min_accuracy:
            raise ExecutionError(f"validation accuracy {val_accuracy:.3f} is below min_accuracy {p.min_accuracy}")
        out = Path(self.ctx.output_dir or self.ctx.env.get("SYNAPSE_OUTPUT_DIR") or ".")
        meta = {"classes": list(range(10)), "features": int(x_train.shape[1]), "epochs": p.epochs,
                "val_accuracy": val_accuracy, "seed": p.seed, "test_fraction": p.test_fraction}
        ckpt = model.save(out / "checkpoint", meta)
        archive = zip_checkpoint(ckpt, out / "model.zip")
        self.log("checkpoint", {"val_accuracy": val_accuracy}, file=str(archive))
        self.log_message(f"validation accuracy {val_accuracy:.1%} after {p.epochs} epochs", "success")
        return {
            "val_accuracy": round(val_accuracy, 4),
            "train_samples": int(len(x_train)),
            "val_samples": int(len(x_val)),
            "seconds": round(time.perf_counter() - started, 3),
            "checkpoint": ckpt,
            "archive": archive,
        }
