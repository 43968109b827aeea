"""Real-package mode: upstream's own classes, driven as upstream's job entrypoint drives them.

When a plugin imported the real synapse-sdk, its action class derives from upstream's
``BaseAction`` (or its function carries upstream's ``@action`` marks).  Then upstream's classes
run unchanged: a ``RuntimeContext`` built as upstream builds it (its backend clients from
``build_runtime_clients``, its agent client, ``PluginEnvironment``), params validated into the
action's model with the backend client in the validation context, then upstream's ``dispatch``
(whose ``run`` uses upstream's orchestrator for steps), upstream's warning-only result check, and
``logger.finish()``.  The runtime's part is the contract around it (``contract/``): the logger
(upstream's ``JobLogger`` writing our events, so the orchestrator hands it the steps'
proportions), the checkpoint, result.json, exit codes and signals.  Only a job id that was given
reaches upstream's context, as under upstream's entrypoint: the host-name fallback names no job.

The mode is decided per action, from what the action *is* (``is_upstream_action``), not from
what is installed: a plugin written against ``synapse_runtime`` keeps our classes even where the
real package is installed beside it.  This driver implements ``contract.drivers.Driver``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ..events import EventSink, ProgressSink, shapes
from . import is_shim

#: ``Driver.mode`` of this driver, as the ``start`` event and the docs name it.
UPSTREAM = "synapse-sdk"


def real_sdk_loaded() -> bool:
    """True when ``synapse_sdk`` has been imported and is the real package, not the shim."""
    module = sys.modules.get("synapse_sdk")
    return module is not None and not is_shim(module)


def is_upstream_action(target: Any) -> bool:
    """Whether ``target`` is upstream's kind of action (a class or an ``@action`` function)."""
    if not real_sdk_loaded():
        return False
    if isinstance(target, type):
        from synapse_sdk.plugins.action import BaseAction

        return issubclass(target, BaseAction)
    # Our @action sets upstream's marks too, and ``is_synapse_action`` besides: that one is ours.
    return bool(getattr(target, "_is_action", False)) and not getattr(target, "is_synapse_action", False)


def upstream_params_model(target: Any) -> Any:
    """The params model upstream's own executors would use for ``target``."""
    if isinstance(target, type):
        return getattr(target, "params_model", None)
    return getattr(target, "_action_params", None)


class UpstreamDriver:
    """Upstream's classes, driven as upstream's ``synapse_sdk.plugins.entrypoint`` drives them."""

    mode = UPSTREAM

    def __init__(self, resolved: Any) -> None:
        self.resolved = resolved

    def validate(self, raw: Any) -> Any:
        # Upstream validates with the backend client in the validation context, so it waits
        # for the context (built after the checkpoint fetch); a bad params file still exits 2.
        return raw

    def context(self, *, writer: ProgressSink, data: dict[str, str], job_id: str | None, client: Any,
                checkpoint: dict[str, Any] | None, output_dir: Path | None, logger: Any = None,
                job_id_given: bool = True, reporter: Any = None) -> Any:
        """Upstream's ``RuntimeContext`` as its entrypoint builds it.

        ``job_id`` reaches it only when it was given (``job_id_given``): upstream's own code calls
        the backend with ``ctx.job_id`` (``GET /jobs/<id>/``), and the host-name fallback names no
        job, so without one ``ctx.job_id`` is None, as under upstream's entrypoint.  ``reporter``
        (the job reporter, when there is one) hears the steps' proportions from the logger.
        """
        from synapse_sdk.plugins.context import RuntimeContext
        from synapse_sdk.plugins.context.env import PluginEnvironment

        from .real_logger import event_logger_class

        given = job_id if job_id_given else None
        v1, v2, agent = _upstream_clients(writer)
        env = PluginEnvironment.from_environ()
        env = PluginEnvironment.merge(env, PluginEnvironment(dict(data)))
        if logger is None:
            logger = event_logger_class()(writer, job_id=given, on_steps=getattr(reporter, "set_steps", None))
        ctx = RuntimeContext(
            logger=logger,
            env=env,
            job_id=given,
            client=v1 if v1 is not None else client,
            v2_client=v2,
            agent_client=agent,
            checkpoint=checkpoint,
            language=data.get("SYNAPSE_LANGUAGE"),
        )
        ctx.output_dir = output_dir  # ours: where result files go (also $SYNAPSE_OUTPUT_DIR)
        return ctx

    def execute(self, raw: Any, ctx: Any) -> Any:
        from synapse_sdk.plugins.action import NoResult, validate_result

        from ..actions.base_action import validate_params

        target = self.resolved.target
        model = upstream_params_model(target)
        params = raw
        if model is not None:
            params = validate_params(model, raw, context={"client": ctx.client})
        try:
            if isinstance(target, type):
                # Upstream's own dispatch: re-validating a model instance returns it unchanged.
                result = target.dispatch(params, ctx)
                result_model = getattr(target, "result_model", NoResult)
            else:
                result = target(params, ctx)
                result_model = getattr(target, "_action_result", None) or NoResult
            # Upstream's rule: a result that does not match result_model only warns.
            result = validate_result(result, result_model, ctx.logger)
        finally:
            if not getattr(ctx.logger, "_is_finished", True):
                ctx.logger.finish()
        return result


def _upstream_clients(writer: EventSink) -> tuple[Any, Any, Any]:
    """Upstream's backend clients (v1, v2) and agent client, built from the environment as its
    entrypoint builds them; a failure warns and leaves that client out (as upstream's does)."""
    v1 = v2 = agent = None
    try:
        from synapse_sdk.utils.auth import build_runtime_clients

        clients = build_runtime_clients()
        v1, v2 = clients.client, clients.v2_client
    except Exception as e:  # noqa: BLE001 - credentials are optional; say why they are missing
        writer.emit("message", shapes.message(f"synapse-sdk backend clients not built: {e}", "warning"))
    try:
        from synapse_sdk.utils.agent import create_agent_client

        agent = create_agent_client()
    except Exception as e:  # noqa: BLE001
        writer.emit("message", shapes.message(f"synapse-sdk agent client not built: {e}", "warning"))
    return v1, v2, agent


__all__ = ["UPSTREAM", "UpstreamDriver", "is_upstream_action", "real_sdk_loaded", "upstream_params_model"]
