"""The offline model registry: ``get_model(id)`` answered from a local file instead of the backend.

Examples, tests and air-gapped sites have no Synapse backend, yet inference actions ask for models
by id. ``SYNAPSE_MODELS_FILE`` names a JSON or YAML file that maps ids to the same metadata the
backend's ``GET models/{id}/`` returns (at least ``file``, a URI the storage module can fetch:
``s3://``, ``https://``, ``file://`` or a path, relative paths being relative to the file)::

    # models.yaml
    123:
      name: resnet50-demo
      category: neural_net
      file: s3://models/resnet50.zip
    mnist:
      file: ./artifacts/mnist.zip

A list of objects that each carry an ``id`` is accepted too. The file is read on first use (a run
that never asks for a model never pays for it, nor fails on it), then cached.
"""

from __future__ import annotations

import copy
import os
import threading
from collections.abc import Mapping
from typing import Any

from synapse_runtime.backend.exceptions import BackendNotFoundError, ModelRegistryError

ENV_MODELS_FILE = "SYNAPSE_MODELS_FILE"


class ModelRegistry:
    """Models by id from a local JSON/YAML file; ``get_model`` returns what the backend would."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.path.abspath(os.path.expanduser(os.fspath(path)))
        self._models: dict[str, dict[str, Any]] | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ModelRegistry | None:
        """A registry when ``SYNAPSE_MODELS_FILE`` is set (the file itself is read on first use)."""
        value = str(env.get(ENV_MODELS_FILE) or "").strip()
        return cls(value) if value else None

    def __repr__(self) -> str:
        return f"ModelRegistry({self.path!r})"

    def get_model(self, model_id: int | str) -> dict[str, Any]:
        """The model's metadata with ``id``, ``name``, ``category`` and ``file`` always present."""
        models = self.load()
        key = str(model_id).strip()
        model = models.get(key)
        if model is None:
            known = ", ".join(sorted(models, key=_sort_key)) or "none"
            raise BackendNotFoundError(
                f"model {model_id} not found in {ENV_MODELS_FILE} {self.path} (known ids: {known})",
                host=self.path, method="GET", path=f"models/{key}/",
            )
        return copy.deepcopy(model)

    def ids(self) -> list[str]:
        return sorted(self.load(), key=_sort_key)

    def load(self) -> dict[str, dict[str, Any]]:
        """Read and check the file once; ModelRegistryError (naming the file) when it is unusable."""
        with self._lock:
            if self._models is None:
                self._models = self._read()
            return self._models

    def _fail(self, problem: str) -> ModelRegistryError:
        return ModelRegistryError(
            f"{ENV_MODELS_FILE} {self.path}: {problem}",
            details={"path": self.path},
            hint="a JSON or YAML mapping of model id to {file: URI, name, category, ...}",
        )

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            with open(self.path, "rb") as fh:
                raw = fh.read()
        except FileNotFoundError:
            raise self._fail("no such file") from None
        except OSError as exc:
            raise self._fail(f"cannot be read ({exc.strerror or exc})") from None
        text = raw.decode("utf-8-sig", "replace")
        data = self._parse(text)
        return self._validate(data)

    def _parse(self, text: str) -> Any:
        ext = os.path.splitext(self.path)[1].lower()
        if ext != ".yaml" and ext != ".yml":
            import json

            try:
                return json.loads(text)
            except ValueError as exc:
                if ext == ".json":
                    raise self._fail(f"invalid JSON ({exc})") from None
        try:
            import yaml
        except ImportError:  # pragma: no cover - pyyaml is a runtime dependency
            raise self._fail("is not JSON and PyYAML is not installed") from None
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        try:
            return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise self._fail(f"invalid YAML{where} ({getattr(exc, 'problem', None) or exc})") from None

    def _validate(self, data: Any) -> dict[str, dict[str, Any]]:
        if data is None:
            raise self._fail("is empty")
        if isinstance(data, list):
            items = []
            for index, entry in enumerate(data):
                if not isinstance(entry, Mapping) or entry.get("id") in (None, ""):
                    raise self._fail(f"entry {index} of the list must be an object with an id")
                items.append((entry["id"], entry))
        elif isinstance(data, Mapping):
            items = list(data.items())
        else:
            raise self._fail(f"must be a mapping of model id to metadata, not {type(data).__name__}")
        base = os.path.dirname(self.path)
        models: dict[str, dict[str, Any]] = {}
        for raw_id, meta in items:
            key = str(raw_id).strip()
            if not key or isinstance(raw_id, bool):
                raise self._fail(f"{raw_id!r} is not a model id")
            if key in models:
                raise self._fail(f"model {key} is listed twice")
            if not isinstance(meta, Mapping):
                raise self._fail(f"model {key}: expected a mapping with a 'file', not {type(meta).__name__}")
            file = meta.get("file")
            if not isinstance(file, str) or not file.strip():
                raise self._fail(f"model {key}: 'file' (the model's URI) is missing or not a string")
            model = dict(meta)
            model["file"] = _resolve_file(file.strip(), base)
            model["id"] = int(key) if key.isdigit() else key
            model.setdefault("name", str(key))
            model.setdefault("category", None)
            models[key] = model
        return models


def _resolve_file(file: str, base: str) -> str:
    """URIs pass through; a relative path is taken relative to the registry file's directory."""
    if "://" in file:
        return file
    path = os.path.expanduser(file)
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(base, path))


def _sort_key(key: str) -> tuple[int, int, str]:
    return (0, int(key), "") if key.isdigit() else (1, 0, key)


__all__ = ["ENV_MODELS_FILE", "ModelRegistry"]
