"""Upstream's record shapes, built from the runtime's events: what the Synapse UI reads.

The backend stores ``progress_record`` and ``metrics_record`` as opaque JSON and the platform's UI
draws them, so they must look exactly like upstream's ``JobLogger`` makes them:

``progress_record``::

    {"record": {"steps": {STEP: {"proportion", "order", "percent", "time_remaining"}}},
     "current_progress": {"overall", "step", "percent", "time_remaining", "order", "time_elapsed"}}

Without categories, ``percent`` and ``time_remaining`` sit directly in ``record``.
``metrics_record`` is ``{"record": {"steps": {STEP: {...metrics}}}}``. Log entries for
``POST logs/`` are ``{"event", "data", "datetime", "job", "step"?, "level"?, "file"?}``.

The steps' proportions and order come from the plugin's step registry (upstream's orchestrator
hands them to the logger, which passes them on: ``configure``); each step is listed with its
``proportion`` as given and its registry ``order`` from the first record on, and ``overall`` is
the proportion-weighted total: the steps that reported progress before the current one count in
full, the current one by its percent (upstream's arithmetic).  Where upstream's arithmetic is
surprising we keep its shape but not its surprises: upstream gives steps without a configured
proportion a share of a pool of unused weight, or 2 % (so ``overall`` ends near 2 % for a plugin
that never configured proportions, or passes a step's share early); here a step without a
proportion weighs nothing, ``overall`` is the current step's percent when no proportions are
known, and the weights are normalised to sum to 100 (the same numbers when they already do, as
upstream's built-in actions' do).
These classes are not thread-safe: the reporter guards them with its lock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..events import shapes

#: Upstream's ``LogLevel`` values; Python logging level names map onto them.
_LOGGING_LEVELS = {
    "DEBUG": "debug",
    "INFO": "info",
    "WARNING": "warning",
    "WARN": "warning",
    "ERROR": "error",
    "CRITICAL": "critical",
    "FATAL": "critical",
}
_MESSAGE_LEVELS = {"debug", "info", "success", "warning", "danger", "error", "critical"}

#: Event types that become log entries.
LOG_EVENT_TYPES = frozenset({"event", "message", "log", "output", "dev_event"})


class ProgressRecord:
    """Accumulates ``progress`` events into upstream's ``progress_record``.

    ``proportions`` (step -> weight, any scale) are the steps' shares of the whole run, e.g. from
    the registered steps' ``progress_proportion``; ``orders`` (step -> 0-based position) their
    places in the registry, which may list steps without a proportion too.  Without ``orders`` the
    proportions' own order is used; steps known from neither get the next numbers as they appear.
    """

    def __init__(self, proportions: Mapping[str, float] | None = None,
                 orders: Mapping[str, int] | None = None) -> None:
        self._weights: dict[str, float] = {}
        self._steps: dict[str, dict[str, Any]] = {}
        self._orders: dict[str, int] = {}
        self._flat: dict[str, Any] = {}
        self._seen: list[str] = []  # steps in the order progress arrived
        self._starts: dict[str | None, float] = {}
        self._current: str | None = None
        self._max_overall = 0.0
        self.touched = False
        if proportions:
            self.configure(proportions, orders)

    def configure(self, proportions: Mapping[str, float], orders: Mapping[str, int] | None = None) -> bool:
        """Set the steps' proportions and order; refused (False) once progress was recorded, as
        upstream's ``JobLogger.set_step_proportions`` refuses: the bar must not be re-weighted mid-run."""
        if self.touched:
            return False
        positive = {str(k): float(v) for k, v in proportions.items() if v and float(v) > 0}
        total = sum(positive.values())
        self._weights = {k: v * 100 / total for k, v in positive.items()} if total > 0 else {}
        self._orders = {str(k): int(v) for k, v in (orders or {}).items()}
        self._steps = {}
        for index, (step, weight) in enumerate(proportions.items()):
            self._steps[str(step)] = {"proportion": weight, "order": self._orders.get(str(step), index)}
        return True

    @property
    def current_step(self) -> str | None:
        return self._current

    def update(self, category: str | None, current: float, total: float, percent: float | None, t: float) -> None:
        """Record one ``progress`` event seen at monotonic time ``t``.

        ``time_remaining`` is upstream's estimate: the step's elapsed time per unit so far, times
        the units left (a step's clock restarts when ``current`` is 0).
        """
        self.touched = True
        if percent is None:
            percent = shapes.percent(current, total)
        if category not in self._starts or current == 0:
            self._starts[category] = t
        remaining = None
        if current and total:
            remaining = round((t - self._starts[category]) / current * (total - current), 2)
        if category is None:
            self._flat["percent"] = percent
            self._flat["time_remaining"] = remaining
            return
        step = self._steps.get(category)
        if step is None:
            order = self._orders.get(category, max((s["order"] for s in self._steps.values()), default=-1) + 1)
            step = self._steps[category] = {"order": order}
        step["percent"] = percent
        step["time_remaining"] = remaining
        if category not in self._seen:
            self._seen.append(category)
        self._current = category

    def current_progress(self, time_elapsed: int | None = None) -> dict[str, Any]:
        if self._current is None:
            percent = self._flat.get("percent", 0)
            result: dict[str, Any] = {
                "overall": percent,
                "step": None,
                "percent": percent,
                "time_remaining": self._flat.get("time_remaining"),
            }
        else:
            step = self._steps[self._current]
            percent = step.get("percent", 0)
            if self._weights:
                overall = 0.0
                for name in self._seen:
                    if name == self._current:
                        overall += self._weights.get(name, 0.0) * percent / 100
                        break
                    overall += self._weights.get(name, 0.0)
                # Never move backwards (a step revisited at 0 % must not undo the bar).
                self._max_overall = max(self._max_overall, overall)
                overall = round(min(self._max_overall, 100.0), 2)
            else:
                overall = percent
            result = {
                "overall": overall,
                "step": self._current,
                "percent": percent,
                "time_remaining": step.get("time_remaining"),
                "order": step.get("order"),
            }
        if time_elapsed is not None:
            result["time_elapsed"] = time_elapsed
        return result

    def to_dict(self, time_elapsed: int | None = None) -> dict[str, Any]:
        """A fresh ``progress_record`` (safe to hand to another thread)."""
        record: dict[str, Any] = {"steps": {name: dict(step) for name, step in self._steps.items()}}
        record.update(self._flat)
        return {"record": record, "current_progress": self.current_progress(time_elapsed)}


class MetricsRecord:
    """``metrics`` events (each carrying its category's merged values) as upstream's ``metrics_record``."""

    def __init__(self) -> None:
        self._steps: dict[str, dict[str, Any]] = {}
        self.touched = False

    def update(self, category: str, values: Mapping[str, Any]) -> None:
        self.touched = True
        self._steps.setdefault(str(category), {}).update(values)

    def to_dict(self) -> dict[str, Any]:
        return {"record": {"steps": {name: dict(values) for name, values in self._steps.items()}}}


def iso_datetime(ts: Any) -> Any:
    """The event's RFC 3339 ``...Z`` timestamp in upstream's ``+00:00`` spelling."""
    if isinstance(ts, str) and ts.endswith("Z"):
        return ts[:-1] + "+00:00"
    return ts


def log_entry(event: Mapping[str, Any], job_id: str, step: str | None = None) -> dict[str, Any] | None:
    """The ``POST logs/`` entry for one runtime event, or None for events that are not logs.

    ``message`` keeps upstream's ``{"content": ..., "key"?: ...}`` data (``key``: the
    ``LogMessageCode`` it was logged with) with its level (the event's ``level`` where it says
    more than its ``context``); ``event`` keeps its own name and data; Python ``logging`` records,
    captured output and dev events get their own event names (``log``, ``output``, ``dev_event``)
    so the platform can filter them apart.  ``step`` is the step the entry belongs to, as the
    caller decided it (the event's own ``step`` when it carries one).
    """
    kind = event.get("type")
    entry: dict[str, Any]
    if kind == "message":
        level = str(event.get("level") or event.get("context") or "info").lower()
        body: dict[str, Any] = {"content": str(event.get("message", ""))}
        if event.get("key") is not None:
            body["key"] = str(event["key"])
        entry = {"event": "message", "data": body, "level": level if level in _MESSAGE_LEVELS else "info"}
    elif kind == "event":
        data = event.get("data")
        entry = {"event": str(event.get("event") or "event"),
                 "data": data if isinstance(data, dict) else {"value": data}, "level": "info"}
        if event.get("file"):
            entry["file"] = event["file"]
    elif kind == "log":
        level = _LOGGING_LEVELS.get(str(event.get("level", "INFO")).upper(), "info")
        entry = {"event": "log", "data": {"content": str(event.get("message", "")),
                                          "logger": event.get("logger")}, "level": level}
    elif kind == "output":
        stream = event.get("stream") or "stdout"
        entry = {"event": "output", "data": {"content": str(event.get("text", "")), "stream": stream},
                 "level": "warning" if stream == "stderr" else "info"}
    elif kind == "dev_event":
        entry = {"event": "dev_event", "data": {"content": str(event.get("message", "")),
                                                "data": event.get("data")}, "level": "debug"}
    else:
        return None
    entry["datetime"] = iso_datetime(event.get("ts"))
    entry["job"] = job_id
    if step:
        entry["step"] = step
    return entry


#: Files larger than this are not inlined into a log entry (the whole entry is one request body).
MAX_INLINE_FILE_BYTES = 10 * 1024 * 1024


def file_data_uri(path: Any) -> str:
    """A local file as a base64 ``data:`` URI, as upstream inlines attachments in ``POST logs/``."""
    import base64
    import mimetypes
    import os

    path = os.fspath(path)
    size = os.path.getsize(path)
    if size > MAX_INLINE_FILE_BYTES:
        raise ValueError(f"{path} is {size} bytes; files over {MAX_INLINE_FILE_BYTES} bytes are not attached to logs")
    mime = mimetypes.guess_type(path)[0] or "application/octet-stream"
    with open(path, "rb") as fh:
        return f"data:{mime};base64,{base64.b64encode(fh.read()).decode('ascii')}"


__all__ = ["LOG_EVENT_TYPES", "MetricsRecord", "ProgressRecord", "file_data_uri", "iso_datetime", "log_entry"]
