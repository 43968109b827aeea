"""What a log entry is made of: levels, the message payload, progress snapshots, and the checks.

Apart from the loggers (loggers.py) so that the real-package logger (compat/real_logger.py) and
the runtime's own share one definition of each rule without importing each other's classes.
"""

from __future__ import annotations

import enum
import warnings
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

from ..events import shapes


class LogLevel(str, enum.Enum):
    """Upstream's message levels (a ``str`` enum: ``LogLevel.INFO == 'info'``)."""

    DEBUG = "debug"
    INFO = "info"
    SUCCESS = "success"
    WARNING = "warning"
    DANGER = "danger"
    ERROR = "error"
    CRITICAL = "critical"


#: The contract's four message contexts; the other levels fold into them.
CONTEXT_OF = {
    "debug": "info",
    "info": "info",
    "success": "success",
    "warning": "warning",
    "danger": "danger",
    "error": "danger",
    "critical": "danger",
}


def as_level(value: Any) -> LogLevel:
    """A ``LogLevel`` from ours, upstream's (any enum with a known value) or a plain string.

    Plain strings are the runtime's deliberate deviation (upstream raises TypeError for them):
    plugins written from the seed documents pass ``'success'``."""
    if isinstance(value, LogLevel):
        return value
    if isinstance(value, enum.Enum):
        value = value.value
    elif not isinstance(value, str):
        raise TypeError(f"level must be a LogLevel enum, got {type(value).__name__}")
    try:
        return LogLevel(value.lower())
    except ValueError:
        raise ValueError(f"unknown message level {value!r}; use one of {', '.join(CONTEXT_OF)}") from None


def level_text(value: Any) -> str:
    """'info', 'success', ... from a level of any accepted form, or None (info)."""
    return "info" if value is None else as_level(value).value


def resolve_level(level: Any, context: Any, stacklevel: int = 3) -> LogLevel:
    """Upstream's rule: ``context`` is deprecated (a DeprecationWarning) and ``level`` wins over it."""
    if context is not None:
        warnings.warn("The 'context' parameter is deprecated. Use 'level' instead.", DeprecationWarning,
                      stacklevel=stacklevel)
        if level is None:
            level = context
    return LogLevel.INFO if level is None else as_level(level)


def is_level(value: Any) -> bool:
    """True for a level in any accepted form (how ``log(level, event, data)`` is told from ``log(event, data)``)."""
    if isinstance(value, enum.Enum):
        return value.value in CONTEXT_OF
    return isinstance(value, str) and value.lower() in CONTEXT_OF


def message_fields(content: Any, level: str) -> dict[str, Any]:
    """A ``message`` event's fields: the UI's context, and the level itself where it says more."""
    context = CONTEXT_OF[level]
    return shapes.message(str(content), context) if level == context else shapes.message(str(content), context, level=level)


def trials_payload(data: dict[str, Any] | None, trials: dict[str, Any] | None, base: list[str] | None,
                   hyperparameters: list[str] | None, metrics: list[str] | None, best_trial: str) -> dict[str, Any]:
    """Upstream's ``trials`` payload: ``data`` as given, else built from the keyword form."""
    if data is not None:
        return data
    return {"base": base or [], "trials": trials or {}, "hyperparameters": hyperparameters or [],
            "metrics": metrics or [], "best_trial": best_trial}


class TypeValueError(TypeError, ValueError):
    """Upstream raises TypeError for a non-mapping; the seed documents say ValueError: both match."""


@dataclass
class ProgressData:
    """A progress snapshot, as upstream's ``get_progress(step)`` returns it."""

    percent: float
    time_remaining: float | None = None
    elapsed_time: float | None = None
    status: str = "running"


class MessageLogData(TypedDict):
    """The data of a ``message`` or ``debug`` log entry (upstream's shape)."""

    content: str
    key: NotRequired[str]


def check_progress(current: Any, total: Any, step: Any) -> None:
    """``set_progress``'s checks in full (upstream's rules, and numbers only): the slow path, taken
    for anything but plain ints and floats and for every failure."""
    from numbers import Real  # here, not at import: only odd numbers and failures come this way

    for name, value in (("current", current), ("total", total)):
        if isinstance(value, bool) or not isinstance(value, Real):
            raise ValueError(f"{name} must be a number, got {value!r}")
    if total <= 0:
        raise ValueError(f"total must be > 0, got {total}")
    if not 0 <= current <= total:
        raise ValueError(f"current must be between 0 and total ({total}), got {current}")
    if step is not None and (not isinstance(step, str) or not step):
        raise ValueError("step (category) must be a non-empty string or None")


__all__ = ["CONTEXT_OF", "LogLevel", "MessageLogData", "ProgressData", "TypeValueError", "as_level", "check_progress",
           "is_level", "level_text", "message_fields", "resolve_level", "trials_payload"]
