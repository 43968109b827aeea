"""Loggers: what ``ctx.logger`` is.  Validation lives here once; each logger only says where
events go (the JSON-lines writer, a terminal, or a list in memory for tests).

The validation rules are upstream's (so a plugin that upstream rejects is rejected here too, at
the same call): progress needs ``total > 0`` and ``0 <= current <= total``; metrics need a mapping
and a non-empty category, and are *merged* into that category's metrics.
"""

from __future__ import annotations

import enum
import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping
from numbers import Real
from typing import Any, TextIO


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
_CONTEXT_OF = {
    "debug": "info",
    "info": "info",
    "success": "success",
    "warning": "warning",
    "danger": "danger",
    "error": "danger",
    "critical": "danger",
}


def _level(value: LogLevel | str | None) -> str:
    if value is None:
        return "info"
    text = value.value if isinstance(value, LogLevel) else str(value).lower()
    if text not in _CONTEXT_OF:
        raise ValueError(f"unknown message level {value!r}; use one of {', '.join(_CONTEXT_OF)}")
    return text


class BaseLogger(ABC):
    """The logger API plugins call; subclasses implement ``_emit`` (and may coalesce progress)."""

    def __init__(self) -> None:
        self.metrics: dict[str, dict[str, Any]] = {}
        self.progress: dict[str | None, tuple[float, float]] = {}
        self.finished = False

    @abstractmethod
    def _emit(self, type: str, fields: dict[str, Any]) -> None:
        """Write one event of the contract's ``type`` with its fields."""

    def _emit_progress(self, current: float, total: float, category: str | None) -> None:
        percent = round(current * 100.0 / total, 2)
        self._emit("progress", {"current": current, "total": total, "percent": percent, "category": category})

    # -- the public API -------------------------------------------------------------------------

    def log(self, event: str, data: Any, file: str | None = None) -> None:
        """Log a named event with its data (and optionally the file it concerns)."""
        if not isinstance(event, str) or not event:
            raise ValueError("event must be a non-empty string")
        self._emit("event", {"event": event, "data": data, "file": None if file is None else str(file)})

    def set_progress(
        self, current: float, total: float, step: str | None = None, *, category: str | None = None
    ) -> None:
        """Progress of the run, or of one phase (``category``; newer upstream calls it ``step``)."""
        cat = category if category is not None else step
        if isinstance(current, bool) or not isinstance(current, Real):
            raise ValueError(f"current must be a number, got {current!r}")
        if isinstance(total, bool) or not isinstance(total, Real):
            raise ValueError(f"total must be a number, got {total!r}")
        if total <= 0:
            raise ValueError(f"total must be > 0, got {total}")
        if not 0 <= current <= total:
            raise ValueError(f"current must be between 0 and total ({total}), got {current}")
        if cat is not None and (not isinstance(cat, str) or not cat):
            raise ValueError("category must be a non-empty string or None")
        self.progress[cat] = (current, total)
        self._emit_progress(current, total, cat)

    def set_metrics(self, value: Mapping[str, Any], category: str | None = None, *, step: str | None = None) -> None:
        """Merge ``value`` into the metrics of ``category`` and report the merged metrics."""
        cat = category if category is not None else step
        if not isinstance(value, Mapping):
            raise ValueError(f"metrics must be a mapping, got {type(value).__name__}")
        if not isinstance(cat, str) or not cat:
            raise ValueError("set_metrics needs a non-empty category")
        merged = self.metrics.setdefault(cat, {})
        merged.update(value)
        self._emit("metrics", {"category": cat, "values": dict(merged)})

    def log_message(
        self, message: str, context: LogLevel | str | None = None, *, level: LogLevel | str | None = None
    ) -> None:
        """A user-facing message; ``context`` or ``level`` may be a plain string or a ``LogLevel``."""
        lvl = _level(level if level is not None else context)
        fields: dict[str, Any] = {"message": str(message), "context": _CONTEXT_OF[lvl]}
        if lvl != fields["context"]:
            fields["level"] = lvl
        self._emit("message", fields)

    def log_dev_event(self, message: str, data: dict[str, Any] | None = None) -> None:
        """A developer-facing event, hidden from end users by default."""
        self._emit("dev_event", {"message": str(message), "data": data})

    def log_download(self, uri: str, done: int, total: int | None, cached: bool) -> None:
        """Transfer progress of a checkpoint or model artifact (a ``download`` event; ours)."""
        self._emit("download", {"uri": uri, "bytes": int(done), "total": total, "cached": bool(cached)})

    def debug(self, message: str) -> None:
        self.log_dev_event(str(message))

    def info(self, message: str) -> None:
        self.log_message(message, level="info")

    def warning(self, message: str) -> None:
        self.log_message(message, level="warning")

    def error(self, message: str) -> None:
        self.log_message(message, level="error")

    def critical(self, message: str) -> None:
        self.log_message(message, level="critical")

    def end_log(self) -> None:
        """Mark the plugin's own work as complete (the runner writes the ``end`` event)."""
        if not self.finished:
            self.finished = True
            self.log_message("Plugin run is complete.", level="success")

    finish = end_log


class EventLogger(BaseLogger):
    """Writes contract events through an ``EventWriter`` (the JSON-lines stream)."""

    def __init__(self, writer: Any) -> None:
        super().__init__()
        self.writer = writer

    def _emit(self, type: str, fields: dict[str, Any]) -> None:
        self.writer.emit(type, fields)

    def _emit_progress(self, current: float, total: float, category: str | None) -> None:
        self.writer.progress(current, total, category)


class MemoryLogger(BaseLogger):
    """Keeps events as dicts in ``events``: for unit tests of actions."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []

    def _emit(self, type: str, fields: dict[str, Any]) -> None:
        self.events.append({"type": type, **fields})

    def of_type(self, type: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == type]


class ConsoleLogger(BaseLogger):
    """Human-readable lines on a stream (stderr by default): for scripts and notebooks."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self.stream = stream
        self._seq = 0

    def _emit(self, type: str, fields: dict[str, Any]) -> None:
        import time

        from .events.pretty import PrettyRenderer

        ts = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        event = {"v": 1, "ts": ts, "seq": self._seq, "type": type, "job_id": None, **fields}
        self._seq += 1
        stream = self.stream or sys.stderr
        print(PrettyRenderer()(event), file=stream)


__all__ = ["BaseLogger", "ConsoleLogger", "EventLogger", "LogLevel", "MemoryLogger"]
