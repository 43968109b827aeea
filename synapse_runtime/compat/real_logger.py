"""Real-package mode's logger: upstream's own ``BaseLogger``, writing our JSON-lines events.

With the real synapse-sdk installed, upstream's classes call the logger's whole interface
(``set_step`` from the orchestrator, ``log(level, event, data, file, step)`` from the context,
``get_progress``/``get_metrics``/``finish`` from actions and the entrypoint).  Rather than imitate
that interface, we subclass upstream's ``BaseLogger``: its state and validation are upstream's
own, and only the hooks that say where things go (``_log_impl``, ``_on_progress``,
``_on_metrics`` and the legacy ``log_*`` methods) are ours, each writing a contract event through
the runner's ``EventWriter`` (and so to the backend reporter listening on it).

The class is built on first use: the module is importable with or without the real package.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from enum import Enum
from typing import Any

# Plain-string levels are accepted (the one deliberate deviation: upstream raises TypeError on
# ``log_message(msg, 'success')``; plugins written from the seed documents do exactly that).
from ..loggers import _level as _level_text
from ..loggers import _message_fields, trials_payload


@functools.cache
def event_logger_class() -> type:
    """``EventLogger`` for real-package mode: a subclass of upstream's ``BaseLogger``."""
    from synapse_sdk.loggers import BaseLogger
    from synapse_sdk.plugins.models.logger import LogLevel

    def as_level(level: Any) -> Any:
        return level if isinstance(level, LogLevel) else LogLevel(_level_text(level))

    class UpstreamEventLogger(BaseLogger):  # type: ignore[misc, valid-type]
        """Upstream's BaseLogger whose output is the runtime's event stream."""

        def __init__(self, writer: Any) -> None:
            super().__init__()
            self.writer = writer
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
            lvl = _level_text(level)
            if event == "message" and "content" in data:
                self.writer.emit("message", _message_fields(data["content"], lvl))
            elif event in ("debug", "dev_event"):
                text = data.get("content", data.get("message", ""))
                extra = data.get("data") if event == "dev_event" else None
                self.writer.emit("dev_event", {"message": str(text), "data": extra if isinstance(extra, Mapping) else None})
            else:
                self.writer.emit("event", {"event": event, "data": data, "file": None if file is None else str(file)})

        def set_progress(self, current: int, total: int, step: str | None = None) -> None:
            # Upstream keeps only the percent; the contract's event carries current and total too.
            self._last_counts = (current, total)
            super().set_progress(current, total, step)

        def _on_progress(self, progress: Any, step: str | None) -> None:
            if getattr(progress, "status", "running") == "failed":
                self.writer.emit("message", _message_fields(f"step {step or '(run)'} failed", "danger"))
                return
            current, total = self._last_counts
            self.writer.progress(current, total, step)

        def _on_metrics(self, step: str, metrics: dict[str, Any]) -> None:
            self.writer.emit("metrics", {"category": step, "values": dict(metrics)})

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
            chosen = level if level is not None else context
            self.log(as_level(chosen), "message", self._build_message_data(str(message)))

        def log_dev_event(self, message: str, data: dict[str, Any] | None = None) -> None:
            self.log(LogLevel.DEBUG, "dev_event", {"message": message, "data": data})

        def log_download(self, uri: str, done: int, total: int | None, cached: bool) -> None:
            """Transfer progress (ours, as on the runtime's own loggers)."""
            self.writer.emit("download", {"uri": uri, "bytes": int(done), "total": total, "cached": bool(cached)})

    return UpstreamEventLogger


__all__ = ["event_logger_class"]
