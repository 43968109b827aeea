"""Running an action inside the current process and getting its result back (``run_plugin``).

For notebooks, unit tests and upstream's ``run_plugin``: no event stream, no exit codes, just
the validated call with a context, and errors raised as exceptions.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .base_action import validate_params
from .context import RuntimeContext
from .loggers import MemoryLogger
from .plugin import load_plugin, resolve_action
from .runner import _execute, _result_value


def run_plugin(
    plugin: str | Path,
    action: str | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    ctx: RuntimeContext | None = None,
    entrypoint: str | None = None,
) -> Any:
    """Load the plugin at ``plugin``, validate ``params`` and run ``action``; returns its result
    as the container would report it (dicts as is, models dumped, other values wrapped)."""
    loaded = load_plugin(plugin, require_config=entrypoint is None)
    resolved = resolve_action(loaded, action, entrypoint)
    ctx = ctx or RuntimeContext(logger=MemoryLogger())
    validated = validate_params(resolved.params_model, dict(params or {}))
    return _result_value(_execute(resolved, validated, ctx))


__all__ = ["run_plugin"]
