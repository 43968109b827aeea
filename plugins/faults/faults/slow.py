"""A workflow that takes time, so that cancellation can land in any step.

Each step writes a marker file into the output and its rollback removes it; the result of a
cancelled run therefore shows which steps ran and that every one was rolled back.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from pydantic import BaseModel, Field

from synapse_runtime import BaseInferenceAction, BaseStep, InferenceContext, StepRegistry, StepResult


class SlowParams(BaseModel):
    seconds: float = Field(10.0, ge=0, le=3600)
    steps: int = Field(3, ge=1, le=20)
    fail_at: int | None = Field(None, description="fail in this step (1-based) instead of finishing")
    rollback_seconds: float = Field(0.0, ge=0, le=600, description="each step's rollback takes this long")
    spawn: bool = Field(False, description="each step starts a child and an orphaned grandchild that never exit")


class SlowStep(BaseStep[InferenceContext]):
    def __init__(self, index: int, count: int, seconds: float, fail: bool, rollback_seconds: float = 0.0,
                 spawn: bool = False) -> None:
        self.index, self.count, self.seconds, self.fail = index, count, seconds, fail
        self.rollback_seconds, self.spawn = rollback_seconds, spawn

    @property
    def name(self) -> str:
        return f"step{self.index}"

    @property
    def progress_weight(self) -> float:
        return 1.0 / self.count

    def _marker(self, context: InferenceContext) -> Path:
        return Path(context.runtime_ctx.output_dir) / f"{self.name}.marker"

    def execute(self, context: InferenceContext) -> StepResult:
        marker = self._marker(context)
        marker.write_text("running")
        if self.spawn:
            self._spawn(Path(context.runtime_ctx.output_dir))
        deadline = time.monotonic() + self.seconds
        ticks = 0
        while time.monotonic() < deadline:
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
            ticks += 1
            context.set_progress(min(ticks * 0.05, self.seconds) if self.seconds else 1, self.seconds or 1, self.name)
        if self.fail:
            raise RuntimeError(f"{self.name} failed on purpose")
        marker.write_text("done")
        context.processed_count += 1
        return StepResult(data={"step": self.index}, rollback_data={"marker": str(marker)})

    def _spawn(self, out: Path) -> None:
        """A child that sleeps, and a grandchild whose parent exits at once (an orphan): both record pids."""
        pids = out / "spawned.pids"
        child = subprocess.Popen(["sleep", "3600"])
        subprocess.run(["sh", "-c", f"sleep 3600 & echo $! >> '{pids}'"], check=True)
        with pids.open("a") as f:
            f.write(f"{child.pid}\n")

    def rollback(self, context: InferenceContext, result: StepResult) -> None:
        rolled = Path(context.runtime_ctx.output_dir) / "rollback.jsonl"
        with rolled.open("a") as f:
            f.write(json.dumps({"step": self.name, "phase": "begin"}) + "\n")
        time.sleep(self.rollback_seconds)
        marker = self._marker(context)
        marker.unlink(missing_ok=True)
        with rolled.open("a") as f:
            f.write(json.dumps({"step": self.name, "error": result.error}) + "\n")


class SlowWorkflow(BaseInferenceAction[SlowParams]):
    def setup_steps(self, registry: StepRegistry[InferenceContext]) -> None:
        p = self.params
        for i in range(1, p.steps + 1):
            registry.register(SlowStep(i, p.steps, p.seconds / p.steps, fail=p.fail_at == i,
                                       rollback_seconds=p.rollback_seconds, spawn=p.spawn))
