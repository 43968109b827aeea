"""Loggers: what ``ctx.logger`` is.  Validation lives here once; each logger only says where
events go (the JSON-lines writer, a terminal, or a list in memory for tests).

The validation rules are upstream's (so a plugin that upstream rejects is rejected here too, at
the same call): progress needs ``total > 0`` and ``0 <= current <= total``; metrics need a mapping
and a non-empty category, and are *merged* into that category's metrics.
"""

from __future__ import annotations

import enum
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Real
from typing import Any, NotRequired, TextIO, TypedDict


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


def _level(value: enum.Enum | str | None) -> str:
    """'info', 'success', ... from a LogLevel (ours or upstream's), a plain string or None."""
    if value is None:
        return "info"
    text = value.value if isinstance(value, enum.Enum) else str(value).lower()
    if text not in _CONTEXT_OF:
        raise ValueError(f"unknown message level {value!r}; use one of {', '.join(_CONTEXT_OF)}")
    return text


def trials_payload(data: dict[str, Any] | None, trials: dict[str, Any] | None, base: list[str] | None,
                   hyperparameters: list[str] | None, metrics: list[str] | None, best_trial: str) -> dict[str, Any]:
    """Upstream's ``trials`` payload: ``data`` as given, else built from the keyword form."""
    if data is not None:
        return data
    return {"base": base or [], "trials": trials or {}, "hyperparameters": hyperparameters or [],
            "metrics": metrics or [], "best_trial": best_trial}


def _message_fields(content: Any, level: str) -> dict[str, Any]:
    """A ``message`` event's fields: the UI's context, and the level itself where it says more."""
    fields: dict[str, Any] = {"message": str(content), "context": _CONTEXT_OF[level]}
    if level != fields["context"]:
        fields["level"] = level
    return fields


class _TypeValueError(TypeError, ValueError):
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


def _is_level(value: Any) -> bool:
    if isinstance(value, LogLevel):
        return True
    return isinstance(value, str) and value.lower() in _CONTEXT_OF


class BaseLogger(ABC):
    """The logger API plugins call; subclasses implement ``_emit`` (and may coalesce progress).

    Upstream's state model: a current step (``set_step``, set by the orchestrator) that
    ``set_progress``/``set_metrics``/``log`` fall back to, progress snapshots per step
    (``get_progress(step).percent``), merged metrics per step (``get_metrics``), and ``finish()``
    after which logging raises RuntimeError.
    """

    def __init__(self) -> None:
        self.metrics: dict[str, dict[str, Any]] = {}
        self.progress: dict[str | None, tuple[float, float]] = {}
        self.finished = False
        self._is_finished = False
        self._current_step: str | None = None
        self._current_step_order: int | None = None
        self._snapshots: dict[str, ProgressData] = {}
        self._step_start_times: dict[str, float] = {}

    @abstractmethod
    def _emit(self, type: str, fields: dict[str, Any]) -> None:
        """Write one event of the contract's ``type`` with its fields."""

    def _emit_progress(self, current: float, total: float, category: str | None) -> None:
        percent = round(current * 100.0 / total, 2)
        self._emit("progress", {"current": current, "total": total, "percent": percent, "category": category})

    def _raise_if_finished(self) -> None:
        if self._is_finished:
            raise RuntimeError("Cannot log to a finished logger")

    # -- the current step (upstream's orchestrator sets it) -------------------------------------

    def set_step(self, step: str | None, order: int | None = None) -> None:
        """Make ``step`` the current one (None clears it and its order)."""
        self._current_step = step
        self._current_step_order = order if step is not None else None

    def get_step(self) -> str | None:
        return self._current_step

    def get_step_order(self) -> int | None:
        return self._current_step_order

    # -- the public API -------------------------------------------------------------------------

    def log(self, *args: Any, **kwargs: Any) -> None:
        """Log a named event: upstream's ``log(level, event, data, file=None, step=None)`` or the
        seed's ``log(event, data, file=None)`` (told apart by a level as the first argument)."""
        self._raise_if_finished()
        if "level" in kwargs or (len(args) >= 2 and _is_level(args[0]) and isinstance(args[1], str)
                                 and (len(args) >= 3 or "data" in kwargs)):
            self._log_leveled(*args, **kwargs)
            return
        self._log_event(*args, **kwargs)

    def _log_event(self, event: str, data: Any, file: str | None = None) -> None:
        if not isinstance(event, str) or not event:
            raise ValueError("event must be a non-empty string")
        self._emit("event", {"event": event, "data": data, "file": None if file is None else str(file)})

    def _log_leveled(self, level: Any, event: str, data: Any, file: str | None = None,
                     step: str | None = None) -> None:
        lvl = _level(level)
        if not isinstance(data, Mapping):
            raise TypeError(f"data must be a dict, got {type(data).__name__}")
        data = dict(data)
        if event == "message" and "content" in data:
            self._emit("message", _message_fields(data["content"], lvl))
        elif event in ("debug", "dev_event"):
            extra = data.get("data") if event == "dev_event" else None
            self._emit("dev_event", {"message": str(data.get("content", data.get("message", ""))),
                                     "data": extra if isinstance(extra, Mapping) else None})
        else:
            self._log_event(event, data, file)

    @staticmethod
    def _build_message_data(content: str, key: str | None = None) -> MessageLogData:
        """The data of a message entry: ``{'content': ...}`` plus the message code's ``key``."""
        data: MessageLogData = {"content": content}
        if key is not None:
            data["key"] = key
        return data

    def set_progress(
        self, current: float, total: float, step: str | None = None, *, category: str | None = None
    ) -> None:
        """Progress of the run, or of one phase (``category``; newer upstream calls it ``step``);
        without either, of the current step."""
        self._raise_if_finished()
        cat = category if category is not None else step
        if cat is None:
            cat = self._current_step
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
        key = cat or "__default__"
        now = time.monotonic()
        if key not in self._step_start_times or current == 0:
            self._step_start_times[key] = now
        elapsed = now - self._step_start_times[key]
        remaining = round(elapsed / current * (total - current), 2) if current > 0 else None
        self._snapshots[key] = ProgressData(round(current / total * 100, 2), remaining, round(elapsed, 2))
        self.progress[cat] = (current, total)
        self._emit_progress(current, total, cat)

    def set_progress_failed(self, step: str | None = None) -> None:
        """Mark a step's progress as failed (a danger message in the event stream)."""
        self._raise_if_finished()
        key = step or "__default__"
        start = self._step_start_times.get(key)
        elapsed = round(time.monotonic() - start, 2) if start is not None else None
        self._snapshots[key] = ProgressData(0.0, None, elapsed, status="failed")
        self._emit("message", {"message": f"step {step or '(run)'} failed", "context": "danger"})

    def get_progress(self, step: str | None = None) -> ProgressData | None:
        """The latest progress snapshot of ``step`` (None: the run's own)."""
        return self._snapshots.get(step or "__default__")

    def get_progress_record(self, *, time_elapsed: int | None = None) -> dict[str, Any] | None:
        """Upstream's hook for the final ``progress_record``; the runner's reporter builds it."""
        return None

    def set_metrics(self, value: Mapping[str, Any], category: str | None = None, *, step: str | None = None) -> None:
        """Merge ``value`` into the metrics of ``category`` (else the current step) and report them."""
        self._raise_if_finished()
        cat = category if category is not None else step
        if cat is None:
            cat = self._current_step
        if not isinstance(value, Mapping):
            raise _TypeValueError(f"metrics must be a mapping, got {type(value).__name__}")
        if not isinstance(cat, str) or not cat:
            raise ValueError("set_metrics needs a non-empty category (step), or a current step")
        merged = self.metrics.setdefault(cat, {})
        merged.update(value)
        self._emit("metrics", {"category": cat, "values": dict(merged)})

    def get_metrics(self, step: str | None = None) -> dict[str, Any]:
        """Copies: one step's merged metrics, or every step's."""
        if step:
            return dict(self.metrics.get(step, {}))
        return {k: dict(v) for k, v in self.metrics.items()}

    def log_message(
        self, message: str, context: LogLevel | str | None = None, *, level: LogLevel | str | None = None
    ) -> None:
        """A user-facing message; ``context`` or ``level`` may be a plain string or a ``LogLevel``."""
        self._raise_if_finished()
        lvl = _level(level if level is not None else context)
        self._emit("message", _message_fields(message, lvl))

    def log_dev_event(self, message: str, data: dict[str, Any] | None = None) -> None:
        """A developer-facing event, hidden from end users by default."""
        self._raise_if_finished()
        self._emit("dev_event", {"message": str(message), "data": data})

    def log_event(self, event: str, data: Any, file: str | None = None) -> None:
        """Upstream's legacy name for ``log(event, data, file)``."""
        self._raise_if_finished()
        self._log_event(event, data, file)

    def log_metric(self, category: str, key: str, value: float | int, **metrics: Any) -> None:
        """A training metric: an ``event`` named ``metric`` (upstream's payload)."""
        self.log_event("metric", {"category": category, "key": key, "value": value, "metrics": metrics})

    def log_visualization(self, category: str, group: str, index: int, image: str, **meta: Any) -> None:
        """An image to show: an ``event`` named ``visualization`` with the image as its file."""
        self.log_event("visualization", {"category": category, "group": group, "index": index, **meta}, image)

    def log_trials(self, data: dict[str, Any] | None = None, *, trials: dict[str, Any] | None = None,
                   base: list[str] | None = None, hyperparameters: list[str] | None = None,
                   metrics: list[str] | None = None, best_trial: str = "") -> None:
        """Hyper-parameter trials: an ``event`` named ``trials``."""
        self.log_event("trials", trials_payload(data, trials, base, hyperparameters, metrics, best_trial))

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
        """The plugin's work is complete: a success message, once (the runner writes ``end``)."""
        if not self.finished:
            self.finished = True
            self.log_message("Plugin run is complete.", level="success")

    def finish(self) -> None:
        """Upstream's end of a logger: no further logging is allowed."""
        self._is_finished = True


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


class NoOpLogger(BaseLogger):
    """Keeps state (progress, metrics, the current step) and writes nothing: upstream's NoOpLogger."""

    def _emit(self, type: str, fields: dict[str, Any]) -> None:
        pass


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


__all__ = ["BaseLogger", "ConsoleLogger", "EventLogger", "LogLevel", "MemoryLogger", "MessageLogData", "NoOpLogger",
           "ProgressData"]
