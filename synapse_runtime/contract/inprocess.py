"""Running an action inside the current process and getting its result back (``run_plugin``).

For notebooks, unit tests and upstream's ``run_plugin``: no event stream, no exit codes, errors
raised as exceptions, events kept in memory.  Otherwise the runner's own stages, in the runner's
order and from the same functions: the contract's env inputs (env files, Secret directories) with
config.yaml's ``env:`` below them, the plugin and action resolved, the driver that fits the action
(ours or upstream's, ``drivers.py``), its context, the action run in its working directory, and
the result by the container's rules.  What it leaves out is what belongs to a process: it does
not write ``os.environ``, install signal handlers, fetch a checkpoint or write ``result.json``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..events import shapes
from .drivers import RUNTIME, driver_for
from .inputs import add_plugin_env, collect_env
from .outputs import result_value
from .plugin import load_plugin, resolve_action
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
    data = dict(collect_env(os.environ).data)
    loaded = load_plugin(plugin, require_config=entrypoint is None)
    add_plugin_env(data, loaded.config.env, export=False)
    resolved = resolve_action(loaded, action, entrypoint)
    driver = driver_for(resolved)
    validated = driver.validate(dict(params or {}))
    if ctx is None:
        logger = None
        if driver.mode == RUNTIME:
            from ..actions.loggers import MemoryLogger

            logger = MemoryLogger()
        ctx = driver.context(writer=MemoryWriter(), data=data, job_id=None, client=None, checkpoint=None,
                             output_dir=None, logger=logger)
    with action_workdir(loaded.root, data):  # as in a run: writable, showing the plugin's files (docs/contract.md)
        return result_value(driver.execute(validated, ctx))


__all__ = ["MemoryWriter", "run_plugin"]
