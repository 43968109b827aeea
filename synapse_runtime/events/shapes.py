"""The one owner of event shapes: a constructor per event type of schema.json, the schema version,
the timestamp format and the progress percent.

Why one module: the same event used to be spelled out by each producer (the writer, the loggers,
upstream's logger adapter, the runner, outputs, the serve package, the backend records), and the
copies drifted (timestamps with a made-up millisecond part, an upload reported as a ``download`` with ``cached:
false``).  Every producer builds its fields here and hands them to an ``EventSink``; the writer adds
the envelope (``v``, ``ts``, ``seq``, ``type``, ``job_id``).  Each constructor returns the fields
dict the writer serialises, so building one costs what the inline dict did (the hot path, coalesced
progress, never calls in here per call: only for a line actually written).

Kept free of imports from the rest of the package, so any module may use it without a cycle.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol

#: The ``v`` of every event line (schema.json's ``v`` const); additive changes keep it.
SCHEMA_VERSION = 1

#: Every ``type`` schema.json knows, in the order docs/events.md lists them.
EVENT_TYPES = (
    "start", "progress", "metrics", "event", "message", "dev_event",
    "log", "output", "download", "upload", "result", "error", "end",
)

#: strftime format of a timestamp's whole seconds (UTC); milliseconds and ``Z`` follow.
SECONDS_FORMAT = "%Y-%m-%dT%H:%M:%S"


class EventSink(Protocol):
    """What producers write events to: ``EventWriter``, or a test's list (``inprocess.MemoryWriter``)."""

    def emit(self, type: str, fields: dict[str, Any]) -> None: ...


class ProgressSink(EventSink, Protocol):
    """A sink that also takes (coalesced) progress: what loggers write to."""

    def progress(self, current: float, total: float, category: str | None = None) -> None: ...


# -- the envelope ----------------------------------------------------------------------------------

def seconds_text(sec: int) -> str:
    """The whole-second part of a timestamp (the writer caches it per second)."""
    return time.strftime(SECONDS_FORMAT, time.gmtime(sec))


def millis(t: float, sec: int) -> int:
    """The millisecond part of ``t`` (rounded, never 1000)."""
    return min(int((t - sec) * 1000 + 0.0005), 999)


def timestamp(t: float | None = None) -> str:
    """An event's ``ts`` (also result.json's ``started_at``/``finished_at``): UTC, milliseconds, ``Z``."""
    if t is None:
        t = time.time()
    sec = int(t)
    return f"{seconds_text(sec)}.{millis(t, sec):03d}Z"


def envelope(type: str, seq: int, job_id: str | None, fields: Mapping[str, Any], t: float | None = None) -> dict[str, Any]:
    """A whole event as a dict, for sinks that render instead of writing JSON (``ConsoleLogger``)."""
    return {"v": SCHEMA_VERSION, "ts": timestamp(t), "seq": seq, "type": type, "job_id": job_id, **fields}


# -- one constructor per event type ----------------------------------------------------------------

def start(plugin: str | None, action: str | None, runtime_version: str, python: str, gpus: list[dict[str, Any]],
          **extra: Any) -> dict[str, Any]:
    """``start``; ``extra``: ``device``, ``device_note`` and the serve fields (``address``, ``routes``,
    ``serve_kind``, ``serve_options_ignored``)."""
    return {"plugin": plugin, "action": action, "runtime_version": runtime_version, "python": python,
            "gpus": gpus, **extra}


def percent(current: float, total: float) -> float:
    """The progress percent every producer reports: two decimals, 0 for a zero total."""
    return round(current * 100.0 / total, 2) if total else 0.0


def progress(current: float, total: float, category: str | None) -> dict[str, Any]:
    """``progress`` (with its percent)."""
    return {"current": current, "total": total, "percent": percent(current, total), "category": category}


def metrics(category: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """``metrics``: one category's merged values."""
    return {"category": category, "values": dict(values)}


def event(name: str, data: Any, file: Any = None, step: str | None = None, *, with_step: bool = False) -> dict[str, Any]:
    """``event`` (a plugin's ``log(event, data, file)``); ``step`` only where the producer knows it."""
    fields = {"event": name, "data": data, "file": None if file is None else str(file)}
    if with_step or step is not None:
        fields["step"] = step
    return fields


def message(text: str, context: str, **extra: Any) -> dict[str, Any]:
    """``message``; ``extra``: ``level``, ``key``, ``step``."""
    return {"message": text, "context": context, **extra}


def dev_event(text: str, data: Any, step: str | None = None, *, with_step: bool = False) -> dict[str, Any]:
    """``dev_event``: ``data`` is kept only when it is a mapping."""
    fields = {"message": str(text), "data": data if isinstance(data, Mapping) else None}
    if with_step or step is not None:
        fields["step"] = step
    return fields


def log(level: str, logger: str, text: str, exc_info: str | None = None) -> dict[str, Any]:
    """``log``: a ``logging`` record."""
    fields = {"level": level, "logger": logger, "message": text}
    if exc_info:
        fields["exc_info"] = exc_info
    return fields


def output(stream: str, text: str) -> dict[str, Any]:
    """``output``: captured stdout/stderr text."""
    return {"stream": stream, "text": text}


def download(uri: str, done: int, total: int | None, cached: bool, via: str | None = None) -> dict[str, Any]:
    """``download``: a fetch's progress; ``via`` says which path served it (a fallback shows)."""
    fields = {"uri": uri, "bytes": int(done), "total": total, "cached": bool(cached)}
    if via is not None:
        fields["via"] = via
    return fields


def upload(uri: str, done: int, total: int | None, via: str | None = None) -> dict[str, Any]:
    """``upload``: the output upload's progress (its own type: an upload is never ``cached``)."""
    fields = {"uri": uri, "bytes": int(done), "total": total}
    if via is not None:
        fields["via"] = via
    return fields


def result(value: Any, **extra: Any) -> dict[str, Any]:
    """``result``; ``extra``: ``truncated``, ``omitted``, ``result_file``."""
    return {"result": value, **extra}


def error(code: int, error_type: str, text: str, details: Any, **extra: Any) -> dict[str, Any]:
    """``error``; ``extra``: ``hint``, ``traceback``."""
    return {"code": int(code), "error_type": error_type, "message": text, "details": details, **extra}


def end(status: str, exit_code: int, duration_s: float) -> dict[str, Any]:
    """``end``: always the last line."""
    return {"status": status, "exit_code": int(exit_code), "duration_s": duration_s}


__all__ = [
    "EVENT_TYPES", "EventSink", "ProgressSink", "SCHEMA_VERSION", "SECONDS_FORMAT", "dev_event", "download", "end",
    "envelope", "error", "event", "log", "message", "metrics", "millis", "output", "percent", "progress", "result",
    "seconds_text", "start", "timestamp", "upload",
]
