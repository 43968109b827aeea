"""Real-package mode's logger: upstream's own ``JobLogger``, writing our JSON-lines events.

With the real synapse-sdk installed, upstream's classes call the logger's whole interface
(``set_step`` from the orchestrator, ``log(level, event, data, file, step)`` from the context,
``get_progress``/``get_metrics``/``finish`` from actions and the entrypoint).  Rather than imitate
that interface, we subclass upstream's ``JobLogger`` (the logger upstream's entrypoint uses for a
job): its state and validation are upstream's own, and only the hooks that say where things go
(``_log_impl``, ``_on_progress``, ``_on_metrics``, ``_on_finish`` and the legacy ``log_*``
methods) are ours, each writing a contract event through the runner's ``EventWriter`` (and so to
the backend reporter listening on it).  Nothing is sent by upstream's code: no client is given.

Why ``JobLogger`` and not ``BaseLogger``: upstream's orchestrator hands the steps' proportions and
order only to a ``JobLogger`` (``isinstance`` check, then ``set_step_proportions``).  We pass them
on to ``on_steps`` (the job reporter's ``set_steps``) so the platform's progress record lists every
step with its proportion, in registry order, as upstream's entrypoint reports it.

Every log event carries ``step``: the step it was logged in (the logger's current step, or the one
given), ``null`` outside any step; a ``message`` logged with a ``LogMessageCode`` keeps its ``key``.

The class is built on first use: the module is importable with or without the real package.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any

# Plain-string levels are accepted (the one deliberate deviation: upstream raises TypeError on
# ``log_message(msg, 'success')``; plugins written from the seed documents do exactly that).
from ..events import ProgressSink, shapes
from ..actions.log_model import level_text, message_fields, trials_payload

#: ``on_steps(proportions, orders)``: where the steps' proportions go (the job reporter).
StepsListener = Callable[[Mapping[str, Any], Mapping[str, int]], None]


@functools.cache
def event_logger_class() -> type:
    """``EventLogger`` for real-package mode: a subclass of upstream's ``JobLogger``."""
    from synapse_sdk.loggers import JobLogger
    from synapse_sdk.plugins.models.logger import LogLevel

    def as_level(level: Any) -> Any:
        return level if isinstance(level, LogLevel) else LogLevel(level_text(level))

    class UpstreamEventLogger(JobLogger):  # type: ignore[misc, valid-type]
        """Upstream's JobLogger whose output is the runtime's event stream."""

        def __init__(self, writer: ProgressSink, job_id: str | None = None, on_steps: StepsListener | None = None) -> None:
            # No client: upstream's sending paths (_enqueue_log, the flusher) are never reached,
            # every hook that would use them is ours below.
            super().__init__(client=None, job_id=job_id or "", background_flush=False)
            self.writer = writer
            self.on_steps = on_steps
            self._last_counts: tuple[float, float] = (0, 1)

        # -- the core hooks -------------------------------------------------------------------

        def log(self, level: Any, event: str, data: dict[str, Any], file: str | None = None,
                step: str | None = None) -> None:
            """Upstream's ``log``; a plain-string level is accepted (our deliberate deviation)."""
            if isinstance(level, str) and not isinstance(level, Enum):
                level = as_level(level)
            super().log(level, event, data, file, step)

        def _log_impl(self, event: str, data: dict[str, Any], file: str | None, step: str | None,
                      level: Any = None) -> None:
            lvl = level_text(level)
            if event == "message" and "content" in data:
                fields = message_fields(data["content"], lvl)
                if data.get("key") is not None:
                    fields["key"] = str(data["key"])  # the LogMessageCode, as upstream's entry keeps it
                fields["step"] = step
                self.writer.emit("message", fields)
            elif event in ("debug", "dev_event"):
                text = data.get("content", data.get("message", ""))
                extra = data.get("data") if event == "dev_event" else None
                self.writer.emit("dev_event", shapes.dev_event(str(text), extra, step, with_step=True))
            else:
                self.writer.emit("event", shapes.event(event, data, file, step, with_step=True))

        def set_step_proportions(self, proportions: dict[str, int], orders: dict[str, int] | None = None) -> None:
            """Upstream's rule (refused once progress started), then the reporter hears of it."""
            super().set_step_proportions(proportions, orders)
            if self.on_steps is not None:
                self.on_steps(dict(proportions), dict(orders or {}))

        def set_progress(self, current: int, total: int, step: str | None = None) -> None:
            # Upstream keeps only the percent; the contract's event carries current and total too.
            self._last_counts = (current, total)
            super().set_progress(current, total, step)

        def _on_progress(self, progress: Any, step: str | None) -> None:
            if step:
                # JobLogger's own bookkeeping (what set_step_proportions and get_progress_record read).
                if step not in self._step_order:
                    self._step_order.append(step)
                self._current_progress_step = step
                entry = self._progress_record.setdefault("steps", {}).setdefault(step, {})
                entry.update({"percent": progress.percent, "time_remaining": progress.time_remaining})
                if self._current_step_order is not None:
                    entry["order"] = self._current_step_order
            if getattr(progress, "status", "running") == "failed":
                fields = message_fields(f"step {step or '(run)'} failed", "danger")
                fields["step"] = step
                self.writer.emit("message", fields)
                return
            current, total = self._last_counts
            self.writer.progress(current, total, step)

        def _on_metrics(self, step: str, metrics: dict[str, Any]) -> None:
            self.writer.emit("metrics", shapes.metrics(step, metrics))

        def _on_finish(self) -> None:
            """Nothing is queued here: every event went to the stream as it happened."""

        # -- upstream's legacy-compatible methods (ConsoleLogger/JobLogger/NoOpLogger have them) --

        def log_event(self, event: str, data: dict[str, Any], file: str | None = None) -> None:
            self.log(LogLevel.INFO, event, data, file)

        def log_metric(self, category: str, key: str, value: float | int, **metrics: Any) -> None:
            self.log(LogLevel.INFO, "metric", {"category": category, "key": key, "value": value, "metrics": metrics})

        def log_visualization(self, category: str, group: str, index: int, image: str, **meta: Any) -> None:
            data = {"category": category, "group": group, "index": index, **meta}
            self.log(LogLevel.INFO, "visualization", data, image)

        def log_trials(self, data: dict[str, Any] | None = None, *, trials: dict[str, Any] | None = None,
                       base: list[str] | None = None, hyperparameters: list[str] | None = None,
                       metrics: list[str] | None = None, best_trial: str = "") -> None:
            self.log(LogLevel.INFO, "trials", trials_payload(data, trials, base, hyperparameters, metrics, best_trial))

        def log_message(self, message: str, level: Any = None, *, context: Any = None) -> None:
            if context is not None:
                warnings.warn("The 'context' parameter is deprecated. Use 'level' instead.",
                              DeprecationWarning, stacklevel=2)
            chosen = level if level is not None else context
            self.log(as_level(chosen), "message", self._build_message_data(str(message)))

        def log_dev_event(self, message: str, data: dict[str, Any] | None = None) -> None:
            self.log(LogLevel.DEBUG, "dev_event", {"message": message, "data": data})

        def log_download(self, uri: str, done: int, total: int | None, cached: bool) -> None:
            """Transfer progress (ours, as on the runtime's own loggers)."""
            self.writer.emit("download", shapes.download(uri, done, total, cached))

    return UpstreamEventLogger


__all__ = ["StepsListener", "event_logger_class"]
