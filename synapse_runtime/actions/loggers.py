"""Loggers: what ``ctx.logger`` is.  Validation lives here once; each logger only says where
events go (the JSON-lines writer, a terminal, or a list in memory for tests).

The validation rules are upstream's (so a plugin that upstream rejects is rejected here too, at
the same call): progress needs ``total > 0`` and ``0 <= current <= total``; metrics need a mapping
and a non-empty category, and are *merged* into that category's metrics.  The levels, payloads and
snapshots themselves are in log_model.py.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping
from time import monotonic
from typing import Any, TextIO

from ..events import shapes
from ..events.shapes import ProgressSink
from .log_model import (
    LogLevel,
    MessageLogData,
    ProgressData,
    TypeValueError,
    as_level,
    check_progress,
    is_level,
    level_text,
    message_fields,
    resolve_level,
    trials_payload,
)


class BaseLogger(ABC):
    """The logger API plugins call.  Subclasses implement ``_emit`` (where contract events go);
    upstream-style subclasses may instead override upstream's hooks ``_log_impl``, ``_on_progress``,
    ``_on_metrics`` and ``_on_finish``, which get what upstream hands them.

    Upstream's state model: a current step (``set_step``, set by the orchestrator) that
    ``set_progress``/``set_metrics``/``log`` fall back to, progress per step
    (``get_progress(step)``), merged metrics per step (``get_metrics``), and ``finish()`` after
    which logging raises RuntimeError.

    Progress is on the hot path (training loops call it per batch): ``set_progress`` checks and
    stores ``(current, total, elapsed)`` and nothing else; the rounded ``ProgressData`` snapshot is
    computed when ``get_progress`` asks (or when a subclass overrides ``_on_progress``, which needs it).
    """

    def __init__(self) -> None:
        self.metrics: dict[str, dict[str, Any]] = {}
        self.finished = False
        self._is_finished = False
        self._current_step: str | None = None
        self._current_step_order: int | None = None
        self._progress: dict[str, tuple[float, float, float] | ProgressData] = {}
        self._step_start_times: dict[str, float] = {}
        self._snapshot_hook = type(self)._on_progress is not BaseLogger._on_progress

    @abstractmethod
    def _emit(self, type: str, fields: dict[str, Any]) -> None:
        """Write one event of the contract's ``type`` with its fields."""

    def _emit_progress(self, current: float, total: float, category: str | None) -> None:
        self._emit("progress", shapes.progress(current, total, category))

    def _raise_if_finished(self) -> None:
        if self._is_finished:
            raise RuntimeError("Cannot log to a finished logger")

    # -- upstream's hooks: the defaults write contract events -----------------------------------

    def _log_impl(self, event: str, data: Any, file: str | None, step: str | None,
                  level: LogLevel | None = None) -> None:
        """One log entry (upstream's hook).  A leveled ``message`` with ``content`` is a ``message``
        event, ``debug``/``dev_event`` a ``dev_event``, anything else an ``event``; the step is not
        part of the contract's events (docs/compat.md)."""
        if level is not None and isinstance(data, Mapping):
            if event == "message" and "content" in data:
                self._emit("message", message_fields(data["content"], as_level(level).value))
                return
            if event in ("debug", "dev_event"):
                extra = data.get("data") if event == "dev_event" else None
                self._emit("dev_event", shapes.dev_event(str(data.get("content", data.get("message", ""))), extra))
                return
        self._emit("event", shapes.event(event, data, file))

    def _on_progress(self, progress: ProgressData, step: str | None) -> None:
        """Upstream's hook, called with the snapshot only where a subclass overrides it."""

    def _on_metrics(self, step: str, metrics: dict[str, Any]) -> None:
        """Upstream's hook: a step's merged metrics changed (default: a ``metrics`` event)."""
        self._emit("metrics", shapes.metrics(step, metrics))

    def _on_finish(self) -> None:
        """Upstream's hook, called by ``finish()``."""

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
        if "level" in kwargs or (len(args) >= 2 and isinstance(args[1], str) and (len(args) >= 3 or "data" in kwargs)
                                 and is_level(args[0])):
            self._log_leveled(*args, **kwargs)
            return
        self._log_event(*args, **kwargs)

    def _log_event(self, event: str, data: Any, file: str | None = None) -> None:
        if not isinstance(event, str) or not event:
            raise ValueError("event must be a non-empty string")
        self._log_impl(event, data, file, self._current_step, None)

    def _log_leveled(self, level: Any, event: str, data: Any, file: str | None = None,
                     step: str | None = None) -> None:
        lvl = as_level(level)
        if not isinstance(data, Mapping):
            raise TypeError(f"data must be a dict, got {type(data).__name__}")
        self._log_impl(event, dict(data), file, step if step is not None else self._current_step, lvl)

    @staticmethod
    def _build_message_data(content: str, key: str | None = None) -> MessageLogData:
        """The data of a message entry: ``{'content': ...}`` plus the message code's ``key``."""
        data: MessageLogData = {"content": content}
        if key is not None:
            data["key"] = key
        return data

    def set_progress(self, current: float, total: float, step: str | None = None, *,
                     category: str | None = None) -> None:
        """Progress of the run, or of one step (``step``; older code says ``category``); without
        either, of the current step."""
        if self._is_finished:
            raise RuntimeError("Cannot log to a finished logger")
        if step is None:
            step = category if category is not None else self._current_step
        # Plain ints and floats in range, a plain str step: checked here; anything else (and every
        # failure) by check_progress, which has the full rules and the messages.
        tc, tt = current.__class__, total.__class__
        if ((tc is not int and tc is not float) or (tt is not int and tt is not float) or total <= 0
                or not 0 <= current <= total or (step is not None and (step.__class__ is not str or not step))):
            check_progress(current, total, step)
        key = step or "__default__"
        now = monotonic()
        starts = self._step_start_times
        start = starts.get(key)
        if start is None or current == 0:
            starts[key] = start = now
        self._progress[key] = (current, total, now - start)
        if self._snapshot_hook:
            self._on_progress(self.get_progress(step), step)  # type: ignore[arg-type]
        else:
            self._emit_progress(current, total, step)

    def set_progress_failed(self, step: str | None = None) -> None:
        """Mark a step's progress as failed (a danger message in the event stream)."""
        self._raise_if_finished()
        key = step or "__default__"
        start = self._step_start_times.get(key)
        elapsed = round(monotonic() - start, 2) if start is not None else None
        self._progress[key] = snapshot = ProgressData(0.0, None, elapsed, status="failed")
        if self._snapshot_hook:
            self._on_progress(snapshot, step)
        else:
            self._emit("message", shapes.message(f"step {step or '(run)'} failed", "danger"))

    def get_progress(self, step: str | None = None) -> ProgressData | None:
        """The latest progress snapshot of ``step`` (None: the run's own), as upstream rounds it."""
        key = step or "__default__"
        state = self._progress.get(key)
        if state is None or isinstance(state, ProgressData):
            return state
        current, total, elapsed = state
        remaining = round(elapsed / current * (total - current), 2) if current > 0 else None
        self._progress[key] = snapshot = ProgressData(round(current / total * 100, 2), remaining, round(elapsed, 2))
        return snapshot

    @property
    def progress(self) -> dict[str | None, tuple[float, float]]:
        """``{step: (current, total)}`` of the latest ``set_progress`` per step (None: the run's own)."""
        out: dict[str | None, tuple[float, float]] = {}
        for key, state in self._progress.items():
            if not isinstance(state, ProgressData):
                out[None if key == "__default__" else key] = (state[0], state[1])
        return out

    def get_progress_record(self, *, time_elapsed: int | None = None) -> dict[str, Any] | None:
        """Upstream's hook for the final ``progress_record``; the runner's reporter builds it."""
        return None

    def set_metrics(self, value: Mapping[str, Any], category: str | None = None, *, step: str | None = None) -> None:
        """Merge ``value`` into the metrics of ``category`` (else the current step) and report them."""
        if self._is_finished:
            raise RuntimeError("Cannot log to a finished logger")
        cat = category if category is not None else step
        if cat is None:
            cat = self._current_step
        if not isinstance(value, dict) and not isinstance(value, Mapping):
            raise TypeValueError(f"metrics must be a mapping, got {type(value).__name__}")
        if not isinstance(cat, str) or not cat:
            raise ValueError("set_metrics needs a non-empty category (step), or a current step")
        merged = self.metrics.get(cat)
        if merged is None:
            merged = self.metrics[cat] = {}
        merged.update(value)
        self._on_metrics(cat, merged)

    def get_metrics(self, step: str | None = None) -> dict[str, Any]:
        """Copies: one step's merged metrics, or every step's."""
        if step:
            return dict(self.metrics.get(step, {}))
        return {k: dict(v) for k, v in self.metrics.items()}

    def log_message(self, message: str, level: LogLevel | str | None = None, *,
                    context: LogLevel | str | None = None) -> None:
        """A user-facing message at ``level`` (a ``LogLevel``, or a plain string: our deviation).
        ``context`` is upstream's deprecated name: it warns, and ``level`` wins when both are given."""
        self._raise_if_finished()
        self.log(resolve_level(level, context), "message", self._build_message_data(str(message)))

    def log_dev_event(self, message: str, data: dict[str, Any] | None = None) -> None:
        """A developer-facing event, hidden from end users by default."""
        self.log(LogLevel.DEBUG, "dev_event", {"message": str(message), "data": data})

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
        self._emit("download", shapes.download(uri, done, total, cached))

    # Upstream's convenience methods: a leveled ``message`` (``debug``: a ``debug`` entry) of {'content': ...}.
    def debug(self, message: str) -> None:
        self.log(LogLevel.DEBUG, "debug", self._build_message_data(message))

    def info(self, message: str) -> None:
        self.log(LogLevel.INFO, "message", self._build_message_data(message))

    def warning(self, message: str) -> None:
        self.log(LogLevel.WARNING, "message", self._build_message_data(message))

    def error(self, message: str) -> None:
        self.log(LogLevel.ERROR, "message", self._build_message_data(message))

    def critical(self, message: str) -> None:
        self.log(LogLevel.CRITICAL, "message", self._build_message_data(message))

    def end_log(self) -> None:
        """The plugin's work is complete: a success message, once (the runner writes ``end``)."""
        if not self.finished:
            self.finished = True
            self.log_message("Plugin run is complete.", level=LogLevel.SUCCESS)

    def finish(self) -> None:
        """Upstream's end of a logger: no further logging is allowed."""
        self._is_finished = True
        self._on_finish()


class EventLogger(BaseLogger):
    """Writes contract events through an ``EventWriter`` (the JSON-lines stream)."""

    def __init__(self, writer: ProgressSink) -> None:
        super().__init__()
        self.writer = writer
        # Progress goes straight to the writer, which coalesces it (one call less on the hot path).
        self._emit_progress = writer.progress  # type: ignore[method-assign]

    def _emit(self, type: str, fields: dict[str, Any]) -> None:
        self.writer.emit(type, fields)


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
    """Human-readable lines on a stream (stderr by default): for scripts and notebooks.

    As upstream's, each log entry is also handed to Python's ``logging`` (logger
    ``synapse_sdk.loggers``, at the entry's level), so that ``logging`` configuration and pytest's
    ``caplog`` see them."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self.stream = stream
        self._seq = 0

    def _emit(self, type: str, fields: dict[str, Any]) -> None:
        from ..events.pretty import PrettyRenderer

        event = shapes.envelope(type, self._seq, None, fields)
        self._seq += 1
        stream = self.stream or sys.stderr
        print(PrettyRenderer()(event), file=stream)

    def _log_impl(self, event: str, data: Any, file: str | None, step: str | None,
                  level: LogLevel | None = None) -> None:
        super()._log_impl(event, data, file, step, level)
        import logging

        number = {"debug": logging.DEBUG, "warning": logging.WARNING, "danger": logging.ERROR,
                  "error": logging.ERROR, "critical": logging.CRITICAL}.get(level_text(level), logging.INFO)
        logging.getLogger("synapse_sdk.loggers").log(number, f"{event} {data if data else ''}".strip())


__all__ = ["BaseLogger", "ConsoleLogger", "EventLogger", "LogLevel", "MemoryLogger", "MessageLogData", "NoOpLogger",
           "ProgressData"]
