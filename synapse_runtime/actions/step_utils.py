"""Wrappers that add a concern to any step without touching it: logs, a duration, a precondition.

Upstream ships these three in ``synapse_sdk.plugins.steps`` and plugins compose registries from
them; names and payloads follow upstream so a plugin's events look the same in both modes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from .steps import BaseStep, StepResult

C = TypeVar("C")


class _Wrapper(BaseStep[Any]):
    """Delegates everything to the wrapped step; subclasses change ``name`` and ``execute``."""

    prefix = ""

    def __init__(self, step: BaseStep[Any]) -> None:
        self._wrapped = step

    @property
    def name(self) -> str:
        return f"{self.prefix}{self._wrapped.name}"

    @property
    def progress_weight(self) -> float:
        return self._wrapped.progress_weight

    def execute(self, context: Any) -> StepResult:
        return self._wrapped.execute(context)

    def can_skip(self, context: Any) -> bool:
        return self._wrapped.can_skip(context)

    def rollback(self, context: Any, result: StepResult) -> None:
        self._wrapped.rollback(context, result)


class LoggingStep(_Wrapper, Generic[C]):
    """``logged_<name>``: a ``step_start`` event before, ``step_end`` (elapsed, success) after,
    ``step_rollback`` before its rollback."""

    prefix = "logged_"

    def execute(self, context: Any) -> StepResult:
        inner = self._wrapped.name
        context.log("step_start", {"step": inner})
        t0 = time.perf_counter()
        result = self._wrapped.execute(context)
        context.log("step_end", {"step": inner, "elapsed": round(time.perf_counter() - t0, 3),
                                 "success": result.success, "skipped": result.skipped})
        return result

    def rollback(self, context: Any, result: StepResult) -> None:
        context.log("step_rollback", {"step": self._wrapped.name})
        self._wrapped.rollback(context, result)


class TimingStep(_Wrapper, Generic[C]):
    """``timed_<name>``: the wrapped step's result with ``data['duration_seconds']`` added."""

    prefix = "timed_"

    def execute(self, context: Any) -> StepResult:
        t0 = time.perf_counter()
        result = self._wrapped.execute(context)
        result.data["duration_seconds"] = round(time.perf_counter() - t0, 6)
        return result


class ValidationStep(BaseStep[Any], Generic[C]):
    """A step that fails the workflow when ``validator(context)`` returns ``(False, error)``."""

    def __init__(self, validator: Callable[[Any], tuple[bool, str | None]], name: str = "validate",
                 progress_weight: float = 0.05) -> None:
        self._validator = validator
        self._name = name
        self._progress_weight = progress_weight

    @property
    def name(self) -> str:
        return self._name

    @property
    def progress_weight(self) -> float:
        return self._progress_weight

    def execute(self, context: Any) -> StepResult:
        ok, error = self._validator(context)
        return StepResult(success=True) if ok else StepResult(success=False, error=error)


__all__ = ["LoggingStep", "TimingStep", "ValidationStep"]
