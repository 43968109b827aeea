"""Step-based workflows: ordered, weighted, skippable steps with rollback on failure.

A workflow either completes or leaves nothing behind: when a step fails (or the run is
cancelled), every step that ran, the failing one included, is rolled back in reverse order
with its own ``StepResult``, so each step can undo exactly what it did.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timezone
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ..contract import signals
from ..errors import Cancelled, ExitCode, PluginError
from .log_model import LogLevel, resolve_level

C = TypeVar("C", bound="BaseStepContext")

# A rollback runs to its end: a SIGTERM/SIGINT that arrives while one runs (after a step failure,
# or between steps) is held (signals.rollback_guard, the one owner of signal state) and raised as
# ``Cancelled`` once the rollback is done, instead of interrupting it half-way.
_rollback_guard = signals.rollback_guard


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
    """State shared by the steps of one workflow; logging goes to the runtime context.

    ``current_step``/``current_step_order`` are set by the orchestrator while a step runs;
    ``set_progress``/``set_metrics`` without a step name then report for that step (upstream's rule).
    """

    runtime_ctx: Any
    step_results: list[StepResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    current_step: str | None = None
    current_step_order: int | None = field(default=None, init=False)
    user_failure_message_emitted: bool = field(default=False, init=False)

    def _set_current_step(self, step_name: str | None, order: int | None = None) -> None:
        """The orchestrator's hook: the step now running (None clears it and its order)."""
        self.current_step = step_name
        self.current_step_order = order if step_name is not None else None

    def mark_user_failure_emitted(self) -> None:
        """A step already told the user why it failed (so no generic message follows)."""
        self.user_failure_message_emitted = True

    def log(self, event: str, data: Any, file: str | None = None, level: Any = None) -> None:
        self.runtime_ctx.log(event, data, file, **({} if level is None else {"level": level}))

    def set_progress(self, current: float, total: float, step: str | None = None, *,
                     category: str | None = None) -> None:
        """Progress of ``step`` (else the running step), handed on as upstream does:
        ``runtime_ctx.set_progress(current, total, step)``, so any context with upstream's signature works."""
        if step is None:
            step = category if category is not None else self.current_step
        self.runtime_ctx.set_progress(current, total, step)

    def set_metrics(self, value: dict[str, Any], category: str | None = None, *, step: str | None = None) -> None:
        chosen = category if category is not None else step
        if chosen is None:
            chosen = self.current_step
        if chosen is None:
            raise ValueError("step must be provided when not executing within a step (current_step is None)")
        self.runtime_ctx.set_metrics(value, chosen)

    def log_message(self, message: str, level: Any = None, *, context: Any = None, **kwargs: Any) -> None:
        """A user-facing message, tagged with the running step (``context``: upstream's deprecated ``level``)."""
        if context is not None:
            level = resolve_level(level, context)
        self.runtime_ctx.log_message(message, level, step=self.current_step, **kwargs)


class BaseStep(ABC, Generic[C]):
    """One unit of a workflow."""

    @property
    def progress_proportion(self) -> int:
        """Share of the job's progress record (upstream's integer proportion; 0: none)."""
        return 0

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

    def get_step_proportions(self) -> dict[str, int]:
        """``{name: progress_proportion}`` of the steps whose proportion is above 0."""
        return {s.name: s.progress_proportion for s in self._steps if s.progress_proportion > 0}

    def get_step_orders(self) -> dict[str, int]:
        """``{name: 0-based position}`` in the current order (insertions included)."""
        return {s.name: i for i, s in enumerate(self._steps)}

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
    """Runs a registry's steps in order with progress and rollback.

    ``Orchestrator(registry, context, progress_callback, before_step=None)`` as upstream: the
    callback gets ``(100, 100)`` after each step whose ``progress_proportion`` is above 0, and
    ``before_step(name, context)`` runs before each step's skip check.  Without a callback the
    overall progress is reported by the steps' weights (the runtime's own behaviour).
    """

    def __init__(
        self,
        registry: StepRegistry[C],
        context: C,
        progress_callback: Callable[[int, int], None] | None = None,
        before_step: Callable[[str, C], None] | None = None,
    ) -> None:
        self.registry = registry
        self.context = context
        self.progress_callback = progress_callback
        self.before_step = before_step

    def _report(self, done_weight: float, total_weight: float) -> None:
        if self.progress_callback is None and total_weight > 0:
            pct = round(min(done_weight / total_weight, 1.0) * 100.0, 2)
            self._set_step(None)  # overall progress, not the last step's
            self.context.set_progress(pct, 100.0)

    def _step_done(self, step: BaseStep[C]) -> None:
        if self.progress_callback is not None and step.progress_proportion > 0:
            self.progress_callback(100, 100)

    def _set_step(self, name: str | None, order: int | None = None) -> None:
        setter = getattr(self.context, "_set_current_step", None)
        if setter is not None:
            setter(name, order)
        else:
            self.context.current_step = name
        logger = self._logger()
        if logger is not None and hasattr(logger, "set_step"):
            if name is None:
                logger.set_step(None)  # upstream's calls, to the letter: a plugin's logger may record them
            else:
                logger.set_step(name, order=order)

    def _logger(self) -> Any:
        return getattr(getattr(self.context, "runtime_ctx", None), "logger", None)

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
        finally:
            self._set_step(None)

    def _execute(self, executed: list[tuple[BaseStep[C], StepResult]]) -> dict[str, Any]:
        steps = self.registry.get_steps()
        total_weight = self.registry.total_weight
        done_weight = 0.0
        for order, step in enumerate(steps):
            self._set_step(step.name, order)
            started = time.monotonic()
            try:
                if self.before_step is not None:
                    self.before_step(step.name, self.context)
                if step.can_skip(self.context):
                    result = StepResult(skipped=True)
                    self.context.step_results.append(result)
                    self._step_event(step, "skipped", started)
                    self._step_done(step)
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
            self._step_done(step)
            done_weight += step.progress_weight
            self._report(done_weight, total_weight)
        return {"success": True, "steps_executed": len(executed), "steps_total": len(steps)}

    def _step_event(self, step: BaseStep[C], status: str, started: float) -> None:
        self._record("step", {"name": step.name, "status": status,
                              "duration_s": round(time.monotonic() - started, 3)})

    def _record(self, event: str, data: dict[str, Any]) -> None:
        """The runtime's own ``step``/``rollback`` events go to the run's logger, not through the
        step context's ``log``: they are not the plugin's log calls (upstream makes none)."""
        logger = self._logger()
        if logger is not None and hasattr(logger, "log"):
            logger.log(LogLevel.INFO, event, data)

    def _rollback(self, executed: list[tuple[BaseStep[C], StepResult]]) -> None:
        todo = list(reversed(executed))
        executed.clear()  # rolled back once, whatever happens next
        for step, result in todo:
            try:
                step.rollback(self.context, result)
                self._record("rollback", {"name": step.name, "status": "done"})
            except Exception as exc:  # keep undoing the others
                self.context.errors.append(f"rollback of {step.name}: {exc}")
                self._record("rollback", {"name": step.name, "status": "failed", "error": str(exc)})


__all__ = ["BaseStep", "BaseStepContext", "Orchestrator", "StepFailedError", "StepRegistry", "StepResult"]
