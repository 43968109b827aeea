"""``BaseDeploymentAction``: upstream's Ray Serve deployment action, as far as it means something here.

Upstream's ``deployment`` action starts (or joins) Ray, deploys the plugin's serve deployment to Ray
Serve under the route prefix and registers the app with the backend. The runtime serves the
deployment itself (``synapse-runtime serve``; in the image, ``SYNAPSE_ACTION`` naming the serving
action), so in shim mode the Ray steps end the run with exit 3 and a message that says what to run
instead; the naming helpers (app name, route prefix, serve_options, actor options) behave as
upstream's, so a plugin that overrides ``execute`` to use only them still works. With the real
synapse-sdk installed, upstream's own class runs and deploys to the Ray cluster ``RAY_ADDRESS`` names.
"""

from __future__ import annotations

from typing import Any

from ..actions.base_action import BaseAction, P
from ..errors import ActionNotFoundError

_INSTEAD = ("this runtime serves the deployment itself: run the image with SYNAPSE_ACTION set to the serving "
            "action (method: serve), or `synapse-runtime serve --plugin DIR`; to deploy to Ray Serve instead, install "
            "synapse-sdk[ray] (real-package mode) and set RAY_ADDRESS (docs/serving.md)")


class DeploymentProgressCategories:
    INITIALIZE: str = "initialize"
    DEPLOY: str = "deploy"
    REGISTER: str = "register"


class BaseDeploymentAction(BaseAction[P]):
    """Upstream's deployment action; the Ray steps are not available in shim mode (exit 3, see the module)."""

    progress = DeploymentProgressCategories()
    #: The serve deployment class to deploy (set in the subclass).
    entrypoint: type | None = None

    def _config(self) -> Any:
        from pathlib import Path

        from ..contract.plugin import load_plugin

        try:
            return load_plugin(Path.cwd()).config
        except Exception:
            return None

    def get_serve_app_name(self) -> str:
        """``SYNAPSE_PLUGIN_RELEASE_CODE``, else ``code@version`` of ./config.yaml (upstream's rule)."""
        code = self.ctx.env.get_str("SYNAPSE_PLUGIN_RELEASE_CODE", "") if self.ctx is not None else ""
        if code:
            return code
        config = self._config()
        if config is None:
            raise RuntimeError("Cannot determine serve app name. Set SYNAPSE_PLUGIN_RELEASE_CODE env var "
                               "or ensure config.yaml exists in working directory.")
        return f"{config.code or config.name}@{config.version}"

    def get_route_prefix(self) -> str:
        from .options import route_prefix

        env = self.ctx.env if self.ctx is not None else {}
        return route_prefix(None, None, {"SYNAPSE_PLUGIN_RELEASE_CODE": self.get_serve_app_name(),
                                          "SYNAPSE_PLUGIN_RELEASE_CHECKSUM": env.get("SYNAPSE_PLUGIN_RELEASE_CHECKSUM") or "",
                                          "SYNAPSE_SERVE_ROUTE_PREFIX": env.get("SYNAPSE_SERVE_ROUTE_PREFIX") or ""})

    def get_serve_options(self) -> dict[str, Any]:
        config = self._config()
        action = config.actions.get(getattr(self, "action_name", None) or "deployment") if config else None
        return dict(action.serve_options) if action is not None else {}

    def get_ray_actor_options(self) -> dict[str, Any]:
        params = self.params.model_dump() if hasattr(self.params, "model_dump") else dict(self.params or {})
        return {k: params[k] for k in ("num_cpus", "num_gpus", "memory") if params.get(k)}

    def _no_ray(self, step: str) -> ActionNotFoundError:
        return ActionNotFoundError(f"{step}: Ray Serve deployment is not available in shim mode", hint=_INSTEAD,
                                   details={"step": step, "route_prefix": self.get_route_prefix()})

    def ray_init(self, **kwargs: Any) -> None:
        raise self._no_ray("ray_init")

    def deploy(self) -> None:
        raise self._no_ray("deploy")

    def register_serve_application(self) -> int | None:
        raise self._no_ray("register_serve_application")


__all__ = ["BaseDeploymentAction", "DeploymentProgressCategories"]
