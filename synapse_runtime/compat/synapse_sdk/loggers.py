"""``synapse_sdk.loggers``: the runtime's loggers, plus upstream's ``BackendLogger`` and ``LogEntry``.

``BackendLogger`` is upstream's logger for a pluggable backend (anything with upstream's
``LoggerBackend`` methods: ``publish_progress``, ``publish_metrics``, ``publish_log``); it writes no
contract events.  A backend that fails is reported on Python's ``logging`` (``synapse_sdk.loggers``)
and never breaks the action, as upstream has it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from synapse_runtime.actions.loggers import (
    BaseLogger,
    ConsoleLogger,
    LogLevel,
    MessageLogData,
    NoOpLogger,
    ProgressData,
)

_logger = logging.getLogger("synapse_sdk.loggers")


@dataclass
class LogEntry:
    """One log entry as a backend receives it (upstream's fields)."""

    event: str
    data: dict[str, Any]
    timestamp: float = field(default_factory=time.time)
    file: str | None = None
    step: str | None = None
    level: Any = None
    language: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"event": self.event, "data": self.data, "timestamp": self.timestamp, "file": self.file,
               "step": self.step, "level": self.level.value if self.level else None}
        if self.language is not None:
            out["language"] = self.language
        return out


class LoggerBackend(Protocol):
    """What ``BackendLogger`` publishes to."""

    def publish_progress(self, job_id: str, progress: ProgressData) -> None: ...
    def publish_metrics(self, job_id: str, metrics: dict[str, Any]) -> None: ...
    def publish_log(self, job_id: str, log_entry: LogEntry) -> None: ...


class BackendLogger(BaseLogger):
    """Publishes progress snapshots, metrics and log entries to ``backend`` for ``job_id``."""

    def __init__(self, backend: LoggerBackend | None, job_id: str) -> None:
        super().__init__()
        self._backend = backend
        self._job_id = job_id
        self._log_queue: list[LogEntry] = []

    def _emit(self, type: str, fields: dict[str, Any]) -> None:
        """Contract events are not this logger's output: everything goes through upstream's hooks."""

    def _log_impl(self, event: str, data: Any, file: str | None, step: str | None,
                  level: LogLevel | None = None) -> None:
        self._log_queue.append(LogEntry(event=event, data=data, file=file, step=step, level=level))
        self._flush_logs()

    def _publish(self, what: str, fn: Any, *args: Any) -> None:
        if self._backend is None:
            return
        try:
            fn(self._job_id, *args)
        except Exception as exc:  # a failing backend must not break the action
            _logger.error(f"Failed to publish {what}: {exc}")

    def _on_progress(self, progress: ProgressData, step: str | None) -> None:
        if self._backend is not None:
            self._publish("progress", self._backend.publish_progress, progress)

    def _on_metrics(self, step: str, metrics: dict[str, Any]) -> None:
        if self._backend is not None:
            self._publish("metrics", self._backend.publish_metrics, {step: metrics})

    def _flush_logs(self) -> None:
        if self._backend is None or not self._log_queue:
            return
        try:
            for entry in self._log_queue:
                self._backend.publish_log(self._job_id, entry)
            self._log_queue.clear()
        except Exception as exc:
            _logger.error(f"Failed to flush logs: {exc}")

    def _on_finish(self) -> None:
        self._flush_logs()


__all__ = ["BackendLogger", "BaseLogger", "ConsoleLogger", "LogEntry", "LogLevel", "LoggerBackend", "MessageLogData",
           "NoOpLogger", "ProgressData"]
