"""Models by id: token -> metadata -> archive (storage layer, shared cache) -> the plugin's loader; an LRU.

Upstream's path, kept: the ``serve_multiplexed_model_id`` header is a JWT (HS256) signed with the
backend URL, carrying ``model`` (the id), ``token`` (the user's) and ``tenant``; it is verified as
upstream verifies it (``jwt.decode(token, backend_url, algorithms=['HS256'])``), once per token and
backend URL (``verified_tokens``, bounded; an ``exp`` claim still ends it; failures are not kept). The model's metadata
then comes from the backend (``GET models/{id}/`` with the user's token) or, offline, from
``SYNAPSE_MODELS_FILE``; its ``file`` is fetched by the runtime's storage layer, so it is verified and
lands in the same shared cache as batch jobs' checkpoints, and is extracted there. The plugin's
loader (``_get_model(info)`` with ``info['path']`` the extracted directory) runs once per model:
concurrent first requests for one model wait on the same load (single flight). At most ``capacity``
models stay loaded (least recently used evicted; upstream's Ray default is 3 per replica).

Errors carry the HTTP status they answer with (asgi.py): a bad or unsigned token 401, an unknown
model 404, a model whose metadata, archive or loader fails 502 (with the cause's type), none given 400.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ServeRequestError(Exception):
    """An error a request is answered with: ``status`` and a type name for the body and the events."""

    status = 500

    def __init__(self, message: str, *, error_type: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type or type(self).__name__
        if status is not None:
            self.status = status


class ModelTokenError(ServeRequestError):
    status = 401


class ModelNotFound(ServeRequestError):
    status = 404


class NoModelGiven(ServeRequestError):
    status = 400


class ModelLoadFailed(ServeRequestError):
    status = 502


@dataclass(frozen=True)
class ModelRef:
    """Which model a request wants: ``key`` identifies the loaded model (never holds a token)."""

    key: str
    model_id: str
    user_token: str | None = None
    tenant: str | None = None
    uri: str | None = None  # the default model: a checkpoint URI instead of an id


class _VerifiedTokens:
    """Tokens already verified, keyed by ``(token, backend URL)``: an LRU of ``capacity`` entries.

    Why: a client sends the same model header on every request, and verifying it with PyJWT cost
    ~18% of the event loop under load (bench/README.md). A hit is only as good as the verification it
    stands for: an entry carrying an ``exp`` claim is dropped once that time has come, so the token is
    verified again and rejected as upstream rejects it; a failure is never kept (a token signed later
    with the right key, or a backend URL set later, must be able to pass).
    """

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple[str, str], tuple[ModelRef, float | None]] = OrderedDict()
        self._lock = threading.Lock()  # real-package mode may verify from worker threads too

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str, backend_url: str) -> ModelRef | None:
        with self._lock:
            entry = self._entries.get((token, backend_url))
            if entry is None:
                return None
            ref, expires = entry
            if expires is not None and time.time() >= expires:
                del self._entries[(token, backend_url)]
                return None
            self._entries.move_to_end((token, backend_url))
            return ref

    def put(self, token: str, backend_url: str, ref: ModelRef, expires: float | None) -> None:
        with self._lock:
            self._entries[(token, backend_url)] = (ref, expires)
            self._entries.move_to_end((token, backend_url))
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


verified_tokens = _VerifiedTokens()


def ref_from_token(token: str, backend_url: str) -> ModelRef:
    """Verify upstream's model JWT; a 401 ``ModelTokenError`` when it is malformed or not signed with ``backend_url``.

    A token verified before (same backend URL, not expired) is answered from ``verified_tokens``.
    """
    cached = verified_tokens.get(token, backend_url)
    if cached is not None:
        return cached
    try:
        import jwt
    except ImportError:  # pragma: no cover - PyJWT is in the serve extra
        raise ModelTokenError("model tokens need PyJWT: pip install 'synapse-runtime[serve]'") from None
    if not backend_url:
        raise ModelTokenError("cannot verify the model token: SYNAPSE_HOST (the backend URL that signs it) is not set")
    import warnings

    try:
        with warnings.catch_warnings():  # the key is upstream's choice (the backend URL), often short
            warnings.simplefilter("ignore")
            info = jwt.decode(token, backend_url, algorithms=["HS256"])
    except jwt.PyJWTError as exc:
        raise ModelTokenError(f"the serve_multiplexed_model_id token is not valid: {type(exc).__name__}") from None
    if not isinstance(info, dict) or info.get("model") in (None, ""):
        raise ModelTokenError("the serve_multiplexed_model_id token names no model")
    digest = hashlib.sha256(token.encode()).hexdigest()[:16]
    ref = ModelRef(key=f"token:{digest}", model_id=str(info["model"]), user_token=info.get("token") or None,
                   tenant=info.get("tenant") or None)
    exp = info.get("exp")  # PyJWT checked it is a number (and not past) when present
    verified_tokens.put(token, backend_url, ref, float(exp) if exp is not None else None)
    return ref


def ref_from_id(model_id: Any) -> ModelRef:
    """A plain model id (the seed route's ``model_id``): resolved with the server's own credentials."""
    return ModelRef(key=f"id:{model_id}", model_id=str(model_id))


def default_ref(uri: str) -> ModelRef:
    """The default model: a checkpoint given the batch way (``SYNAPSE_CHECKPOINT``)."""
    return ModelRef(key="default", model_id="default", uri=uri)


class ModelStore:
    """Loaded models by ``ModelRef.key``: an LRU of ``capacity`` with single-flight loads."""

    def __init__(self, load: Callable[[ModelRef], Awaitable[Any]], capacity: int = 3,
                 on_load: Callable[[ModelRef, float, BaseException | None], None] | None = None) -> None:
        self._load = load
        self.capacity = max(1, capacity)
        self._models: OrderedDict[str, Any] = OrderedDict()
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._on_load = on_load
        self.pinned: set[str] = set()  # the default model is never evicted

    def __len__(self) -> int:
        return len(self._models)

    async def get(self, ref: ModelRef) -> Any:
        if ref.key in self._models:
            self._models.move_to_end(ref.key)
            return self._models[ref.key]
        pending = self._pending.get(ref.key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[ref.key] = future
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        try:
            model = await self._load(ref)
        except BaseException as exc:
            error = exc if isinstance(exc, ServeRequestError) else ModelLoadFailed(
                f"model {ref.model_id} failed to load: {type(exc).__name__}: {exc}", error_type=type(exc).__name__)
            if not future.done():
                future.set_exception(error)
                future.exception()  # retrieved: waiters re-raise it, nobody else must log it
            if self._on_load is not None:
                self._on_load(ref, loop.time() - t0, error)
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise error from exc
        finally:
            self._pending.pop(ref.key, None)
        self._models[ref.key] = model
        while len(self._models) > self.capacity + len(self.pinned & set(self._models)):
            victim = next(k for k in self._models if k not in self.pinned)
            del self._models[victim]
        future.set_result(model)
        if self._on_load is not None:
            self._on_load(ref, loop.time() - t0, None)
        return model


def fetch_model_files(ref: ModelRef, *, data: Mapping[str, str], backend_url: str,
                      progress: Callable[..., None] | None) -> dict[str, Any]:
    """Metadata plus ``path`` (the extracted archive in the shared cache); blocking, run in a thread."""
    from ..errors import StorageError
    from ..contract.settings import build
    from ..storage import fetch

    settings = build(data, strict=False)  # the server checked ``data`` strictly at start (exit 2)
    if ref.uri is not None:
        info: dict[str, Any] = {"id": "default", "file": ref.uri}
        result = fetch(ref.uri, extract=settings.checkpoint_extract, sha256=settings.checkpoint_sha256,
                       progress=progress, settings=settings)
        return {**info, "path": Path(result.path)}
    info = model_metadata(ref, data=data, backend_url=backend_url)
    uri = info.get("file")
    if not uri:
        raise ModelLoadFailed(f"model {ref.model_id} has no file URL", error_type="ValueError")
    try:
        result = fetch(str(uri), extract=True, progress=progress, settings=settings)
    except StorageError as exc:
        raise ModelLoadFailed(f"model {ref.model_id}: {exc.message}", error_type=type(exc).__name__) from exc
    return {**info, "path": Path(result.path)}


def model_metadata(ref: ModelRef, *, data: Mapping[str, str], backend_url: str) -> dict[str, Any]:
    """``GET models/{id}/`` from the offline registry (``SYNAPSE_MODELS_FILE``) or the backend."""
    from ..backend import ModelRegistry
    from ..backend.client import BackendClient
    from ..backend.exceptions import BackendAuthError, BackendNotFoundError
    from ..errors import PluginError

    registry = ModelRegistry.from_env(data)
    try:
        if registry is not None:
            return registry.get_model(ref.model_id)
        if ref.user_token:
            from ..backend.transport import normalize_host

            client: Any = BackendClient(normalize_host(backend_url), user_token=ref.user_token, tenant=ref.tenant,
                                        url_host=data.get("SYNAPSE_PLUGIN_RUN_URL_HOST") or None)
        else:
            client = BackendClient.from_env(data)
            if client is None:
                raise ModelLoadFailed("no model source: set SYNAPSE_HOST and SYNAPSE_ACCESS_TOKEN, or "
                                      "SYNAPSE_MODELS_FILE", error_type="ConfigurationError", status=503)
        return client.get_model(ref.model_id)
    except BackendNotFoundError:
        raise ModelNotFound(f"model {ref.model_id} not found") from None
    except BackendAuthError as exc:
        raise ModelTokenError(f"the backend refused the model token for model {ref.model_id} "
                              f"(HTTP {getattr(exc, 'status', '?')})") from None
    except PluginError as exc:
        raise ModelLoadFailed(f"model {ref.model_id}: {exc.message}", error_type=type(exc).__name__) from exc


async def call_maybe_async(fn: Callable[..., Any], *args: Any) -> Any:
    """``await fn(*args)`` for a coroutine function, else run it in a thread (a sync loader must not block the loop)."""
    if inspect.iscoroutinefunction(fn):
        return await fn(*args)
    result = await asyncio.to_thread(fn, *args)
    return await result if inspect.isawaitable(result) else result


__all__ = [
    "ModelLoadFailed", "ModelNotFound", "ModelRef", "ModelStore", "ModelTokenError", "NoModelGiven",
    "ServeRequestError", "call_maybe_async", "default_ref", "fetch_model_files", "model_metadata",
    "ref_from_id", "ref_from_token", "verified_tokens",
]
