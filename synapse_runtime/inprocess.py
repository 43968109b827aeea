"""Running an action inside the current process and getting its result back (``run_plugin``).

For notebooks, unit tests and upstream's ``run_plugin``: no event stream, no exit codes, just
the validated call with a context, and errors raised as exceptions.  An action built on the real
synapse-sdk is driven the way the runner drives it (compat/modes.py), with its events kept in
memory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .compat.modes import RUNTIME, driver_for
from .events import shapes
from .context import RuntimeContext
from .loggers import MemoryLogger
from .plugin import load_plugin, resolve_action
from .runner import _result_value
from .workdir import action_workdir


class MemoryWriter:
    """The slice of ``EventWriter`` loggers use, keeping events as dicts (no stream)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def emit(self, type: str, fields: dict[str, Any]) -> None:
        self.events.append({"type": type, **fields})

    def progress(self, current: float, total: float, category: str | None = None) -> None:
        self.emit("progress", shapes.progress(current, total, category))


def run_plugin(
    plugin: str | Path,
    action: str | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    ctx: Any = None,
    entrypoint: str | None = None,
) -> Any:
    """Load the plugin at ``plugin``, validate ``params`` and run ``action``; returns its result
    as the container would report it (dicts as is, models dumped, other values wrapped)."""
    loaded = load_plugin(plugin, require_config=entrypoint is None)
    resolved = resolve_action(loaded, action, entrypoint)
    driver = driver_for(resolved)
    validated = driver.validate(dict(params or {}))
    if ctx is None:
        if driver.mode == RUNTIME:
            ctx = RuntimeContext(logger=MemoryLogger())
        else:
            ctx = driver.context(writer=MemoryWriter(), data=dict(os.environ), job_id=None, client=None,
                                 checkpoint=None, output_dir=None)
    with action_workdir(loaded.root):  # as in a run: writable, showing the plugin's files (docs/contract.md)
        return _result_value(driver.execute(validated, ctx))


__all__ = ["MemoryWriter", "run_plugin"]
