"""``BaseServeDeployment``: upstream's serve-deployment base class, served by ``synapse-runtime serve``.

Upstream's API and behaviour (``synapse_sdk.plugins.actions.inference.serve``): constructed with the
backend URL; ``get_model()`` loads the model that the request's ``serve_multiplexed_model_id`` header
names (a JWT signed with the backend URL) and caches it; the plugin implements ``_get_model(info)``
and ``infer``; ``infer_batch`` gets real batches when ``serve_options.batch`` is set;
``handle_inference`` answers long work with a ticket to poll. What differs, by design: the model id
comes from our server's contextvar rather than from Ray (no Ray needed), the archive goes through the
runtime's storage layer and shared cache (verified, extracted in place), the model token is never
printed (upstream prints it on every request), and the loaded-model cache is bounded (an LRU).
Run as a job (``dispatch``), it is an HTTP client of the served endpoint, as upstream's is.
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any

from ..actions.base_action import BaseAction
from . import deferred
from .context import get_multiplexed_model_id


class BaseServeDeployment(BaseAction):  # type: ignore[type-arg]
    """Base of an inference deployment: implement ``_get_model(info)`` and ``infer``."""

    #: Seconds ``handle_inference`` waits inline before answering with a ticket (upstream's default).
    serve_deadline_s: float = 8.0

    def __init__(self, backend_url: str) -> None:
        self.backend_url = backend_url
        self._model_cache: dict[str, Any] = {}
        self._ticket_store = deferred.TicketStore()

    def execute(self) -> None:
        """Not used: a serve deployment answers requests (``infer``)."""

    @classmethod
    def dispatch(cls, params: dict[str, Any], ctx: Any) -> Any:
        """Run as a job: call the served endpoint, as upstream does (``infer_remote``)."""
        return cls.infer_remote(params, ctx)

    @classmethod
    def infer_remote(cls, params: dict[str, Any], ctx: Any) -> Any:
        """POST ``params['json']`` to ``http://localhost:8100/<prefix>/`` with the model token header."""
        import json
        import urllib.request

        from .options import route_prefix

        env = ctx.env
        prefix = route_prefix(code=None, version=None, env=env)
        backend_url = env.get_str("SYNAPSE_PLUGIN_RUN_HOST", "") or env.get_str("SYNAPSE_HOST", "") or ""
        headers = {"content-type": "application/json"}
        if params.get("model") is not None:
            headers["serve_multiplexed_model_id"] = create_serve_multiplexed_model_id(
                params["model"], env.get_str("SYNAPSE_ACCESS_TOKEN", "") or "", backend_url)
        body = json.dumps(params.get("json", {})).encode()
        request = urllib.request.Request(f"http://localhost:8100{prefix}/", data=body, headers=headers,
                                         method=str(params.get("method", "post")).upper())
        with urllib.request.urlopen(request) as response:  # noqa: S310 - a fixed local URL
            return json.loads(response.read() or b"null")

    async def get_model(self) -> Any:
        """The model the current request names (its ``serve_multiplexed_model_id`` header)."""
        return await self._load_model_multiplexed(get_multiplexed_model_id())

    async def _load_model_multiplexed(self, model_id: str) -> Any:
        """Upstream's plain dict cache; the server replaces this on its instance with its model store
        (LRU, single flight), for upstream's class and ours alike."""
        if model_id not in self._model_cache:
            self._model_cache[model_id] = await self._load_model_from_token(model_id)
        return self._model_cache[model_id]

    async def _load_model_from_token(self, model_token: str) -> Any:
        """Verify the JWT, fetch metadata and archive (storage layer), extract, and call ``_get_model``."""
        import os

        from .models import fetch_model_files, ref_from_token

        ref = ref_from_token(model_token, self.backend_url)
        info = await asyncio.to_thread(fetch_model_files, ref, data=dict(os.environ),
                                       backend_url=self.backend_url, progress=None)
        return await self._get_model(info)

    @abstractmethod
    async def _get_model(self, model_info: dict[str, Any]) -> Any:
        """Load the model from ``model_info['path']`` (the extracted archive); override it."""
        raise NotImplementedError("Override _get_model() to load your model format from model_info['path']")

    @abstractmethod
    async def infer(self, *args: Any, **kwargs: Any) -> Any:
        """Run inference (``model = await self.get_model()``); override it."""
        raise NotImplementedError("Override infer() to implement inference")

    async def infer_batch(self, requests: list[Any]) -> list[Any]:
        """One result per input; with ``serve_options.batch`` the server gathers concurrent calls into ``requests``."""
        return [await self.infer(r) for r in requests]

    async def handle_inference(self, body: dict[str, Any], input_model: type,
                               runner: Callable[[Any], Awaitable[Any]], *, deadline_s: float | None = None) -> Any:
        """Upstream's deferred responses: the result within the deadline, else a ticket; a poll body collects it."""
        if deferred.is_poll_request(body):
            return self._resolve_ticket(deferred.extract_ticket(body))
        data = await asyncio.to_thread(input_model.model_validate, body)  # type: ignore[attr-defined]
        task = asyncio.ensure_future(runner(data))
        try:
            return await asyncio.wait_for(asyncio.shield(task),
                                          timeout=self.serve_deadline_s if deadline_s is None else deadline_s)
        except asyncio.TimeoutError:
            return deferred.pending_envelope(self._ticket_store.register(task))

    def _resolve_ticket(self, ticket: str | None) -> dict[str, Any]:
        task = None if ticket is None else self._ticket_store.get(ticket)
        if task is None:
            return deferred.not_found_envelope(ticket or "")
        if not task.done():
            return deferred.pending_envelope(ticket)  # type: ignore[arg-type]
        self._ticket_store.pop(ticket)  # type: ignore[arg-type]
        if task.cancelled():
            return deferred.failed_envelope("deferred inference task was cancelled")
        if task.exception() is not None:
            return deferred.failed_envelope(str(task.exception()))
        return task.result()  # type: ignore[no-any-return]


def create_serve_multiplexed_model_id(model_id: int | str, token: str, backend_url: str,
                                      tenant: str | None = None) -> str:
    """Upstream's model token: a JWT (HS256, keyed by the backend URL) of ``model``, ``token`` and ``tenant``."""
    import jwt

    payload: dict[str, Any] = {"model": str(model_id), "token": token}
    if tenant:
        payload["tenant"] = tenant
    return jwt.encode(payload, backend_url, algorithm="HS256")


__all__ = ["BaseServeDeployment", "create_serve_multiplexed_model_id"]
