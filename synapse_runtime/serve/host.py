"""What the server hosts: the served action's kind, its instance and app, and how models load for it.

Two kinds are servable. A *deployment* (a class deriving upstream's or our ``BaseServeDeployment``)
is constructed once with the backend URL, as upstream's ``.bind(backend_url)`` does; its FastAPI
routes are bound to that instance (binding.py); its ``_load_model_multiplexed`` is replaced on the
instance by the model store, so upstream's ``get_model`` and ours load through the runtime's storage
layer. A *seed action* (a ``BaseInferenceAction``) is instantiated once with a runtime context and
served by seed.py. Anything else is not servable: exit 3.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ActionNotFoundError
from ..events import EventWriter
from .models import ModelRef, ModelStore, NoModelGiven, call_maybe_async, default_ref, fetch_model_files, ref_from_token


def _derives(cls: Any, name: str) -> bool:
    return isinstance(cls, type) and any(k.__name__ == name for k in cls.__mro__)


def kind_of(target: Any, entrypoint: str) -> str:
    """``deployment`` or ``seed``; ActionNotFoundError (exit 3) for an action that cannot be served."""
    if _derives(target, "BaseServeDeployment"):
        return "deployment"
    if _derives(target, "BaseInferenceAction"):
        return "seed"
    raise ActionNotFoundError(
        f"{entrypoint!r} cannot be served: it is neither a BaseServeDeployment nor a BaseInferenceAction",
        details={"entrypoint": entrypoint},
        hint="serve an action whose class derives BaseServeDeployment (upstream's inference template) or "
             "BaseInferenceAction; run other actions with `synapse-runtime run`")


@dataclass
class Hosted:
    app: Any
    store: ModelStore
    default: ModelRef | None


def backend_url(data: Mapping[str, str]) -> str:
    """The URL the deployment is bound with and model tokens are signed with, as upstream's deploy reads it."""
    return (data.get("SYNAPSE_PLUGIN_RUN_HOST") or data.get("SYNAPSE_HOST") or "").strip()


def host_deployment(cls: type, *, data: Mapping[str, str], title: str, capacity: int, default_uri: str | None,
                    progress: Callable[..., None], on_load: Callable[..., None], batch: Any,
                    on_batch: Callable[[int], None]) -> Hosted:
    """Construct ``cls(backend_url)``, wire its model loading to the store, bind its routes."""
    from .batching import Batcher
    from .binding import bind_app

    url = backend_url(data)
    instance = cls(url)

    async def load(ref: ModelRef) -> Any:
        info = await asyncio.to_thread(fetch_model_files, ref, data=data, backend_url=url, progress=progress)
        return await call_maybe_async(instance._get_model, info)

    store = ModelStore(load, capacity, on_load)
    default = default_ref(default_uri) if default_uri else None

    async def load_multiplexed(model_id: str) -> Any:
        if not model_id:
            if default is None:
                raise NoModelGiven("no model: send the serve_multiplexed_model_id header "
                                   "(or configure a default model with SYNAPSE_CHECKPOINT)")
            return await store.get(default)
        return await store.get(ref_from_token(model_id, url))

    instance._load_model_multiplexed = load_multiplexed
    if batch is not None and hasattr(instance, "infer_batch"):
        instance.infer_batch = Batcher(instance.infer_batch, batch.max_batch_size, batch.batch_wait_timeout_s,
                                       on_batch)
    return Hosted(bind_app(cls, instance, title), store, default)


def host_seed(resolved: Any, *, data: dict[str, str], writer: EventWriter, title: str, capacity: int,
              default_uri: str | None, progress: Callable[..., None], on_load: Callable[..., None], batch: Any,
              on_batch: Callable[[int], None]) -> Hosted:
    """Instantiate the BaseInferenceAction once and serve its params model."""
    from ..backend.wiring import connect
    from ..contract.drivers import driver_for
    from ..contract.settings import build
    from .seed import seed_app

    driver = driver_for(resolved)
    settings = build({**data, "SYNAPSE_REPORT_JOB": "0"}, strict=False)  # no job to report: a server is no job
    client, _ = connect(settings, data, "serve", False, writer, title, resolved.name)
    ctx = driver.context(writer=writer, data=data, job_id=None, client=client, checkpoint=None, output_dir=None)
    action = resolved.target(None, ctx)

    async def load(ref: ModelRef) -> Any:
        if ref.uri is not None:
            return await asyncio.to_thread(fetch_model_files, ref, data=data, backend_url="", progress=progress)
        from ..backend.exceptions import BackendNotFoundError
        from .models import ModelNotFound

        try:
            return await asyncio.to_thread(action.load_model, ref.model_id)
        except BackendNotFoundError:
            raise ModelNotFound(f"model {ref.model_id} not found") from None

    store = ModelStore(load, capacity, on_load)
    default = default_ref(default_uri) if default_uri else None
    params_model = resolved.params_model
    if params_model is None:
        raise ActionNotFoundError(f"{resolved.entrypoint!r} has no params_model to take requests with",
                                  hint="give the action a params_model (a pydantic model with model_id and inputs)")
    return Hosted(seed_app(action, params_model, store, title=title, default=default, batch=batch,
                           on_batch=on_batch), store, default)


__all__ = ["Hosted", "backend_url", "host_deployment", "host_seed", "kind_of"]
