"""Step-based workflows: ordered, weighted, skippable steps with rollback on failure.

A workflow either completes or leaves nothing behind: when a step fails (or the run is
cancelled), every step that ran, the failing one included, is rolled back in reverse order
with its own ``StepResult``, so each step can undo exactly what it did.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Generic, TypeVar

from .errors import Cancelled, ExitCode, PluginError

C = TypeVar("C", bound="BaseStepContext")

# A rollback runs to its end: a SIGTERM/SIGINT that arrives while one runs (after a step failure,
# or between steps) is held by the runner's handler (``defer_cancellation``) and raised as
# ``Cancelled`` once the rollback is done, instead of interrupting it half-way.
_rollback_depth = 0
_held_signal: int | None = None


def defer_cancellation(signum: int) -> bool:
    """For signal handlers: True (and the signal held) when a rollback is running in this process."""
    global _held_signal
    if _rollback_depth == 0:
        return False
    if _held_signal is None:
        _held_signal = signum
    return True


@contextmanager
def _rollback_guard() -> Any:
    global _rollback_depth, _held_signal
    _rollback_depth += 1
    try:
        yield
    finally:
        _rollback_depth -= 1
        if _rollback_depth == 0 and _held_signal is not None:
            signum, _held_signal = _held_signal, None
            raise Cancelled(signum)


@dataclass
class StepResult:
    """What one step did; ``rollback_data`` is what its ``rollback`` needs to undo it."""

    success: bool = True
    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    rollback_data: dict[str, Any] = field(default_factory=dict)
    skipped: bool = False
    timestamp: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


@dataclass
class BaseStepContext:
    """State shared by the steps of one workflow; logging goes to the runtime context."""

    runtime_ctx: Any
    step_results: list[StepResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    current_step: str | None = None

    def log(self, event: str, data: Any, file: str | None = None) -> None:
        self.runtime_ctx.log(event, data, file)

    def set_progress(
        self, current: float, total: float, step: str | None = None, *, category: str | None = None
    ) -> None:
        self.runtime_ctx.set_progress(current, total, step, category=category)

    def set_metrics(self, value: dict[str, Any], category: str | None = None, *, step: str | None = None) -> None:
        self.runtime_ctx.set_metrics(value, category, step=step)

    def log_message(self, message: str, context: Any = None, *, level: Any = None) -> None:
        self.runtime_ctx.log_message(message, context, level=level)


class BaseStep(ABC, Generic[C]):
    """One unit of a workflow."""

    progress_proportion: int = 0

    @property
    @abstractmethod
    def name(self) -> str:
        """Unique name within the workflow."""

    @property
    @abstractmethod
    def progress_weight(self) -> float:
        """Share of the workflow's progress (0..1)."""

    @abstractmethod
    def execute(self, context: C) -> StepResult:
        """Do the work; raise or return ``StepResult(success=False)`` to fail the workflow."""

    def can_skip(self, context: C) -> bool:
        """True when the step's work is already done."""
        return False

    def rollback(self, context: C, result: StepResult) -> None:
        """Undo what ``execute`` did (default: nothing to undo)."""


class StepRegistry(Generic[C]):
    """The ordered list of a workflow's steps."""

    def __init__(self) -> None:
        self._steps: list[BaseStep[C]] = []

    def register(self, step: BaseStep[C]) -> StepRegistry[C]:
        if any(s.name == step.name for s in self._steps):
            raise ValueError(f"a step named {step.name!r} is already registered")
        self._steps.append(step)
        return self

    def unregister(self, name: str) -> None:
        self._steps = [s for s in self._steps if s.name != name]

    def _index(self, name: str) -> int:
        for i, s in enumerate(self._steps):
            if s.name == name:
                return i
        raise ValueError(f"no step named {name!r}; registered: {[s.name for s in self._steps]}")

    def insert_after(self, name: str, step: BaseStep[C]) -> None:
        self._steps.insert(self._index(name) + 1, step)

    def insert_before(self, name: str, step: BaseStep[C]) -> None:
        self._steps.insert(self._index(name), step)

    def get_steps(self) -> list[BaseStep[C]]:
        return list(self._steps)

    @property
    def total_weight(self) -> float:
        return sum(s.progress_weight for s in self._steps)

    def __len__(self) -> int:
        return len(self._steps)

    def __bool__(self) -> bool:
        return bool(self._steps)


class StepFailedError(RuntimeError):
    """``Step '<name>' failed: <error>`` (upstream's RuntimeError), keeping the cause's exit code."""

    def __init__(self, step: str, error: str, cause: BaseException | None = None) -> None:
        super().__init__(f"Step '{step}' failed: {error}")
        self.step = step
        self.cause = cause

    @property
    def exit_code(self) -> ExitCode:
        return self.cause.exit_code if isinstance(self.cause, PluginError) else ExitCode.FAILED


class Orchestrator(Generic[C]):
    """Runs a registry's steps in order with weighted overall progress and rollback."""

    def __init__(self, registry: StepRegistry[C], context: C) -> None:
        self.registry = registry
        self.context = context

    def _report(self, done_weight: float, total_weight: float) -> None:
        if total_weight > 0:
            pct = round(min(done_weight / total_weight, 1.0) * 100.0, 2)
            self.context.set_progress(pct, 100.0)

    def execute(self) -> dict[str, Any]:
        executed: list[tuple[BaseStep[C], StepResult]] = []
        try:
            return self._execute(executed)
        except Cancelled:
            # Also a cancellation that landed between two steps (while a step event was written):
            # every step that ran is undone; ``executed`` is empty when it was rolled back already.
            with _rollback_guard():
                self._rollback(executed)
            raise

    def _execute(self, executed: list[tuple[BaseStep[C], StepResult]]) -> dict[str, Any]:
        steps = self.registry.get_steps()
        total_weight = self.registry.total_weight
        done_weight = 0.0
        for step in steps:
            self.context.current_step = step.name
            started = time.monotonic()
            try:
                if step.can_skip(self.context):
                    result = StepResult(skipped=True)
                    self.context.step_results.append(result)
                    self._step_event(step, "skipped", started)
                    done_weight += step.progress_weight
                    self._report(done_weight, total_weight)
                    continue
                result = step.execute(self.context)
                if not isinstance(result, StepResult):
                    result = StepResult(data=result if isinstance(result, dict) else {"value": result})
            except Cancelled:
                with _rollback_guard():
                    failed = StepResult(success=False, error="cancelled")
                    self.context.step_results.append(failed)
                    executed.append((step, failed))
                    self._step_event(step, "cancelled", started)
                    self._rollback(executed)
                raise
            except Exception as exc:
                with _rollback_guard():  # a signal now is raised as Cancelled after the rollback
                    failed = StepResult(success=False, error=str(exc) or type(exc).__name__)
                    self.context.step_results.append(failed)
                    self.context.errors.append(f"{step.name}: {failed.error}")
                    executed.append((step, failed))
                    self._step_event(step, "failed", started)
                    self._rollback(executed)
                raise StepFailedError(step.name, failed.error or "", exc) from exc
            self.context.step_results.append(result)
            executed.append((step, result))
            if not result.success:
                with _rollback_guard():
                    self.context.errors.append(f"{step.name}: {result.error}")
                    self._step_event(step, "failed", started)
                    self._rollback(executed)
                raise StepFailedError(step.name, result.error or "step returned success=False")
            self._step_event(step, "succeeded", started)
            done_weight += step.progress_weight
            self._report(done_weight, total_weight)
        self.context.current_step = None
        return {"success": True, "steps_executed": len(executed), "steps_total": len(steps)}

    def _step_event(self, step: BaseStep[C], status: str, started: float) -> None:
        self.context.log(
            "step", {"name": step.name, "status": status, "duration_s": round(time.monotonic() - started, 3)}
        )

    def _rollback(self, executed: list[tuple[BaseStep[C], StepResult]]) -> None:
        todo = list(reversed(executed))
        executed.clear()  # rolled back once, whatever happens next
        for step, result in todo:
            try:
                step.rollback(self.context, result)
                self.context.log("rollback", {"name": step.name, "status": "done"})
            except Exception as exc:  # keep undoing the others
                self.context.errors.append(f"rollback of {step.name}: {exc}")
                self.context.log("rollback", {"name": step.name, "status": "failed", "error": str(exc)})


__all__ = ["BaseStep", "BaseStepContext", "Orchestrator", "StepFailedError", "StepRegistry", "StepResult"]
