"""The request's model id, where upstream's code asks Ray Serve for it.

Upstream's ``BaseServeDeployment.get_model`` calls ``ray.serve.get_multiplexed_model_id()``, which
Ray answers from the ``serve_multiplexed_model_id`` request header. Our server puts that header in a
contextvar for the duration of the request (asyncio copies it into every task the request starts),
and makes ``ray.serve.get_multiplexed_model_id`` read it: with Ray installed, by replacing that one
function on the real module; without Ray (the default image), by registering a minimal stand-in
``ray``/``ray.serve`` module that has only this function (``ray.__synapse_runtime_stand_in__``).
"""

from __future__ import annotations

import contextvars
import importlib.util
import sys
import types

#: The ``serve_multiplexed_model_id`` header of the request being served ("" when absent, as Ray has it).
MODEL_ID: contextvars.ContextVar[str] = contextvars.ContextVar("serve_multiplexed_model_id", default="")
HEADER = "serve_multiplexed_model_id"


def get_multiplexed_model_id() -> str:
    """The current request's model id header, as ``ray.serve.get_multiplexed_model_id`` returns it."""
    return MODEL_ID.get()


def install_ray_hook() -> str:
    """Make ``ray.serve.get_multiplexed_model_id`` answer from our contextvar; returns ``"ray"`` or ``"stand-in"``."""
    loaded = sys.modules.get("ray")
    if getattr(loaded, "__synapse_runtime_stand_in__", False):
        return "stand-in"  # installed already (a second server in this process)
    if loaded is not None or importlib.util.find_spec("ray") is not None:
        try:
            from ray import serve  # type: ignore[import-not-found]

            serve.get_multiplexed_model_id = get_multiplexed_model_id
            return "ray"
        except ImportError:
            pass
    ray = types.ModuleType("ray")
    ray.__synapse_runtime_stand_in__ = True  # type: ignore[attr-defined]
    ray.__doc__ = "synapse-runtime's stand-in: only serve.get_multiplexed_model_id (Ray is not installed)."
    serve_mod = types.ModuleType("ray.serve")
    serve_mod.get_multiplexed_model_id = get_multiplexed_model_id  # type: ignore[attr-defined]
    ray.serve = serve_mod  # type: ignore[attr-defined]
    sys.modules["ray"], sys.modules["ray.serve"] = ray, serve_mod
    return "stand-in"


__all__ = ["HEADER", "MODEL_ID", "get_multiplexed_model_id", "install_ray_hook"]
