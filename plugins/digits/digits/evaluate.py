"""A function action: accuracy of a checkpoint on the held-out split it was trained without."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, Field

from synapse_runtime import RuntimeContext, action

from .model import SoftmaxModel, load_split


class EvaluateParams(BaseModel):
    model_path: str | None = None
    test_fraction: float | None = Field(None, gt=0, lt=1, description="default: the checkpoint's own split")
    seed: int | None = Field(None, description="default: the checkpoint's own seed")


@action(name="evaluate", description="Accuracy of a checkpoint on the held-out split", params=EvaluateParams)
def evaluate(params: EvaluateParams, ctx: RuntimeContext) -> dict:
    path = params.model_path or (ctx.checkpoint or {}).get("path")
    if not path:
        raise ValueError("no model: pass model_path or set SYNAPSE_CHECKPOINT")
    model = SoftmaxModel.load(path)
    meta_file = Path(path) / "meta.json" if Path(path).is_dir() else None
    meta = json.loads(meta_file.read_text()) if meta_file and meta_file.is_file() else {}
    fraction = params.test_fraction if params.test_fraction is not None else meta.get("test_fraction", 0.2)
    seed = params.seed if params.seed is not None else meta.get("seed", 0)
    _, _, x_val, y_val = load_split(fraction, seed)
    accuracy = model.accuracy(x_val, y_val)
    ctx.set_metrics({"accuracy": round(accuracy, 4), "samples": int(len(y_val))}, "evaluate")
    return {"accuracy": round(accuracy, 4), "samples": int(len(y_val)), "seed": seed, "test_fraction": fraction}
