"""Step-based inference: load the checkpoint, preprocess, predict in batches, write predictions.

The model comes from the run's checkpoint (``SYNAPSE_CHECKPOINT``), a ``model_path`` param, or a
``model_id`` resolved by the backend or the offline registry (``SYNAPSE_MODELS_FILE``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, model_validator

from synapse_runtime import BaseInferenceAction, BaseStep, InferenceContext, StepRegistry, StepResult

from .model import SoftmaxModel, load_split


class InferParams(BaseModel):
    model_id: int | str | None = None
    model_path: str | None = None
    inputs: list[list[float]] | None = Field(None, description="8x8 images as 64 grey levels (0-16)")
    samples: int = Field(20, ge=1, le=2000, description="without inputs (absent or null): this many held-out digits")
    batch_size: int = Field(8, ge=1)

    @model_validator(mode="after")
    def _inputs_shape(self) -> InferParams:
        for i, row in enumerate(self.inputs or []):
            if len(row) != 64:
                raise ValueError(f"inputs[{i}] has {len(row)} values; an 8x8 image has 64")
        return self


@dataclass
class DigitsContext(InferenceContext):
    action: Any = None  # the running DigitsInference, for load_model(model_id)


class LoadModelStep(BaseStep[DigitsContext]):
    name = "load_model"
    progress_weight = 0.2

    def execute(self, context: DigitsContext) -> StepResult:
        ctx = context.runtime_ctx
        params = context.params
        if params.get("model_path"):
            path = Path(params["model_path"])
        elif ctx.checkpoint and ctx.checkpoint.get("path"):
            path = Path(ctx.checkpoint["path"])
        elif params.get("model_id") is not None:
            path = Path(context.action.load_model(params["model_id"])["path"])
        else:
            raise ValueError("no model: set SYNAPSE_CHECKPOINT, or pass model_path or model_id")
        context.model = SoftmaxModel.load(path)
        context.model_path = path
        context.set_progress(1, 1, "model_load")
        return StepResult(data={"model_path": str(path)})


class PreprocessStep(BaseStep[InferenceContext]):
    name = "preprocess"
    progress_weight = 0.1

    def execute(self, context: InferenceContext) -> StepResult:
        params = context.params
        if params.get("inputs") is not None:  # [] is an empty shard's slice: nothing to predict
            context.requests = [{"pixels": row, "label": None} for row in params["inputs"]]
        else:
            _, _, x_val, y_val = load_split()
            n = min(params["samples"], len(x_val))
            context.requests = [{"pixels": x_val[i].tolist(), "label": int(y_val[i])} for i in range(n)]
        context.batch_size = params["batch_size"]
        return StepResult(data={"requests": len(context.requests)})


class PredictStep(BaseStep[InferenceContext]):
    name = "predict"
    progress_weight = 0.6

    def execute(self, context: InferenceContext) -> StepResult:
        total = len(context.requests)
        for start in range(0, total, context.batch_size):
            batch = context.requests[start : start + context.batch_size]
            x = np.array([r["pixels"] for r in batch], dtype=np.float64)
            probs = context.model.probabilities(x)
            for request, p in zip(batch, probs):
                pred = int(p.argmax())
                context.results.append({"prediction": pred, "confidence": round(float(p[pred]), 4), "label": request["label"]})
            context.processed_count += len(batch)
            context.set_progress(context.processed_count, total, "inference")
        return StepResult(data={"predicted": context.processed_count})


class WritePredictionsStep(BaseStep[InferenceContext]):
    name = "write_predictions"
    progress_weight = 0.1

    def execute(self, context: InferenceContext) -> StepResult:
        out = context.runtime_ctx.output_dir
        labelled = [r for r in context.results if r["label"] is not None]
        accuracy = sum(r["prediction"] == r["label"] for r in labelled) / len(labelled) if labelled else None
        if accuracy is not None:
            context.set_metrics({"accuracy": round(accuracy, 4), "samples": len(labelled)}, "inference")
        if out is None:
            return StepResult(data={"accuracy": accuracy})
        path = Path(out) / "predictions.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in context.results))
        return StepResult(data={"accuracy": accuracy, "file": str(path)}, rollback_data={"file": str(path)})

    def rollback(self, context: InferenceContext, result: StepResult) -> None:
        file = result.rollback_data.get("file")
        if file:
            Path(file).unlink(missing_ok=True)


class DigitsInference(BaseInferenceAction[InferParams]):
    def setup_steps(self, registry: StepRegistry[InferenceContext]) -> None:
        registry.register(LoadModelStep())
        registry.register(PreprocessStep())
        registry.register(PredictStep())
        registry.register(WritePredictionsStep())

    def create_context(self) -> DigitsContext:
        base = super().create_context()
        return DigitsContext(runtime_ctx=self.ctx, params=base.params, model_id=base.model_id, action=self)

    def run(self) -> dict:
        result = super().run()
        labelled = [r for r in result.get("results", []) if r["label"] is not None]
        if labelled:
            result["accuracy"] = round(sum(r["prediction"] == r["label"] for r in labelled) / len(labelled), 4)
        return result
