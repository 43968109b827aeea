"""How a run drives an action: one small interface, two implementations.

The runner, ``run_plugin`` and the server never ask which classes an action is built on; they ask
``driver_for`` and then call the same three methods (``Driver``).  ``RuntimeDriver`` (here) runs
our classes, imported as ``synapse_runtime`` or through the ``synapse_sdk`` shim;
``compat.upstream_driver.UpstreamDriver`` runs upstream's own classes when the plugin imported
the real synapse-sdk.  Which one is decided per action, from what the action *is*, so a plugin
written against ``synapse_runtime`` keeps our classes even where the real package is installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from ..events import ProgressSink

#: ``Driver.mode`` of the runtime's own driver.
RUNTIME = "runtime"


class Driver(Protocol):
    """What the runner needs from a driver, in the order it calls them."""

    mode: str

    def validate(self, raw: Any) -> Any:
        """Params as the action will see them; a driver may defer validation to ``execute``."""

    def context(self, *, writer: ProgressSink, data: dict[str, str], job_id: str | None, client: Any,
                checkpoint: dict[str, Any] | None, output_dir: Path | None, logger: Any = None,
                job_id_given: bool = True, reporter: Any = None) -> Any:
        """The ``RuntimeContext`` the action gets (ours or upstream's)."""

    def execute(self, params: Any, ctx: Any) -> Any:
        """Run the action and return its (checked) result."""


class RuntimeDriver:
    """Our classes (directly or through the shim): params validated first, before any download."""

    mode = RUNTIME

    def __init__(self, resolved: Any) -> None:
        self.resolved = resolved

    def validate(self, raw: Any) -> Any:
        from ..actions.base_action import validate_params

        model = self.resolved.params_model
        return raw if model is None else validate_params(model, raw)

    def context(self, *, writer: ProgressSink, data: dict[str, str], job_id: str | None, client: Any,
                checkpoint: dict[str, Any] | None, output_dir: Path | None, logger: Any = None,
                job_id_given: bool = True, reporter: Any = None) -> Any:
        # Our context keeps the host-name fallback as ``ctx.job_id`` (it names the run in our
        # events); nothing of ours calls the backend with it (backend/wiring.py).
        from ..actions.context import RuntimeContext
        from ..actions.env import PluginEnvironment
        from ..actions.loggers import EventLogger

        return RuntimeContext(
            logger=logger if logger is not None else EventLogger(writer),
            env=PluginEnvironment(data),
            job_id=job_id,
            client=client,
            checkpoint=checkpoint,
            language=data.get("SYNAPSE_LANGUAGE"),
            output_dir=output_dir,
        )

    def execute(self, params: Any, ctx: Any) -> Any:
        from ..actions.base_action import invoke

        return invoke(self.resolved.target, params, ctx)


def driver_for(resolved: Any) -> Driver:
    """The driver for a resolved action: upstream's when the action is upstream's own kind."""
    from ..compat.upstream_driver import UpstreamDriver, is_upstream_action

    return UpstreamDriver(resolved) if is_upstream_action(resolved.target) else RuntimeDriver(resolved)


__all__ = ["RUNTIME", "Driver", "RuntimeDriver", "driver_for"]
