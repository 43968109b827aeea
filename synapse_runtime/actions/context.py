"""RuntimeContext: everything an action may depend on, injected rather than reached for.

Actions get their logger, environment, backend client and checkpoint from here, never from
globals, so the same action runs in a container, on a laptop and in a unit test.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .env import PluginEnvironment
from .log_model import resolve_level
from .loggers import BaseLogger, LogLevel, MemoryLogger


@dataclass
class RuntimeContext:
    """Dependencies of one run (upstream's dataclass, field for field)."""

    logger: BaseLogger = field(default_factory=MemoryLogger)
    env: PluginEnvironment = field(default_factory=PluginEnvironment)
    job_id: str | None = None
    client: Any = None
    #: Upstream's v2 backend client (None here: the runtime's client speaks v1).
    v2_client: Any = None
    agent_client: Any = None
    checkpoint: dict[str, Any] | None = None
    language: str | None = None
    #: Where the action writes files that are part of its result (ours; not in upstream).
    output_dir: Path | None = None

    def __post_init__(self) -> None:
        if isinstance(self.env, Mapping) and not isinstance(self.env, PluginEnvironment):
            self.env = PluginEnvironment(self.env)
        elif self.env is None:
            self.env = PluginEnvironment()

    @property
    def client_v1(self) -> Any:
        """Upstream's symmetric name for ``client``."""
        return self.client

    @property
    def client_v2(self) -> Any:
        """Upstream's symmetric name for ``v2_client``."""
        return self.v2_client

    def log(self, event: str, data: Any, file: str | None = None, level: LogLevel | str | None = None) -> None:
        """Log a named event with its data (``level``: upstream's, kept by its loggers)."""
        if level is None:
            self.logger.log(event, data, file)
        else:
            self.logger.log(level, event, data, file)

    def set_progress(self, current: float, total: float, step: str | None = None, *,
                     category: str | None = None) -> None:
        """Report progress (``step`` for a phase; ``category`` is its older name)."""
        self.logger.set_progress(current, total, step if step is not None else category)

    def set_metrics(self, value: Mapping[str, Any], category: str | None = None, *, step: str | None = None) -> None:
        """Merge metrics into a step (``category`` is the same, by its older name)."""
        self.logger.set_metrics(value, category if category is not None else step)

    def log_message(
        self, message: Any, level: LogLevel | str | None = None, *, context: LogLevel | str | None = None,
        language: str | None = None, step: str | None = None, **kwargs: Any,
    ) -> None:
        """A user-facing message at ``level`` (a ``LogLevel``, or a plain string; ``context`` is
        upstream's deprecated name: it warns, and ``level`` wins when both are given).

        As upstream: ``message`` may be a ``{language: template}`` dict (picked by ``language``, the
        context's language, ``SYNAPSE_LANGUAGE``, then ``en``), and ``kwargs`` fill its ``{}``s; the
        entry goes to ``logger.log(level, 'message', {'content': ...}, step=step)``."""
        resolved = resolve_level(level, context)
        if isinstance(message, Mapping):
            lang = language or self.language or self.env.get("SYNAPSE_LANGUAGE") or "en"
            message = message.get(lang) or message.get("en", "")
        text = str(message)
        if kwargs:
            text = text.format(**kwargs)
        self.logger.log(resolved, "message", self.logger._build_message_data(text), step=step)

    def log_metric(self, category: str, key: str, value: float | int, **metrics: Any) -> None:
        """A training metric (upstream's ``metric`` event)."""
        self.logger.log_metric(category, key, value, **metrics)

    def log_visualization(self, category: str, group: str, index: int, image: str, **meta: Any) -> None:
        """An image to show (upstream's ``visualization`` event)."""
        self.logger.log_visualization(category, group, index, image, **meta)

    def log_trials(self, data: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """Hyper-parameter trials (upstream's ``trials`` event)."""
        self.logger.log_trials(data, **kwargs)

    def log_dev_event(self, message: str, data: dict[str, Any] | None = None) -> None:
        """A developer-facing event, hidden from end users by default."""
        self.logger.log_dev_event(message, data)

    def end_log(self) -> None:
        """Signal that the plugin's work is complete."""
        self.logger.end_log()


__all__ = ["PluginEnvironment", "RuntimeContext"]
