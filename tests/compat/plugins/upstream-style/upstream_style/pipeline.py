"""A step-based inference action on upstream's orchestrator: order, current step, rollback."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel

from synapse_sdk.plugins.actions.inference import BaseInferenceAction, InferenceContext
from synapse_sdk.plugins.steps import BaseStep, StepRegistry, StepResult, TimingStep


class PipelineParams(BaseModel):
    numbers: list[float]
    fail_at: str | None = None


def _journal(ctx: InferenceContext, line: str) -> None:
    out = Path(os.environ.get("SYNAPSE_OUTPUT_DIR") or ctx.runtime_ctx.env.get("SYNAPSE_OUTPUT_DIR"))
    with open(out / "journal.txt", "a") as f:
        f.write(line + "\n")


class _Step(BaseStep[InferenceContext]):
    def __init__(self, name: str, proportion: int = 10) -> None:
        self._name = name
        self._proportion = proportion

    @property
    def progress_proportion(self) -> int:
        return self._proportion

    @property
    def name(self) -> str:
        return self._name

    @property
    def progress_weight(self) -> float:
        return 0.25

    def execute(self, context: InferenceContext) -> StepResult:
        if context.params.get("fail_at") == self.name:
            raise ValueError(f"{self.name} refused")
        # Upstream's step context knows the step running now, and so does the logger.
        _journal(context, f"run {self.name} order={context.current_step_order} "
                          f"logger_step={context.runtime_ctx.logger.get_step()}")
        context.set_metrics({"seen": len(context.params["numbers"])})  # no step given: the current one
        if self.name == "square":
            context.results = [{"value": x * x} for x in context.params["numbers"]]
            context.processed_count = len(context.results)
        return StepResult(data={"step": self.name}, rollback_data={"undo": self.name})

    def rollback(self, context: InferenceContext, result: StepResult) -> None:
        _journal(context, f"rollback {self.name}")


class Pipeline(BaseInferenceAction[PipelineParams]):
    def execute(self) -> dict:  # abstract upstream; unused once steps are registered
        raise NotImplementedError

    def setup_steps(self, registry: StepRegistry[InferenceContext]) -> None:
        registry.register(_Step("load"))
        registry.register(_Step("square"))
        registry.insert_before("square", _Step("check", proportion=0))
        registry.register(TimingStep(_Step("write")))
        _order = registry.get_step_orders()
        assert _order == {"load": 0, "check": 1, "square": 2, "timed_write": 3}, _order
