"""The outer ASGI app: health, routes and metrics; the plugin's app under the prefix; limits and errors.

Per request, in order: ``/-/healthz``, ``/-/routes`` and ``/metrics`` are answered here (never
limited, never counted); a path outside the prefix is 404; while starting or draining, 503; beyond
``max_ongoing_requests``, 503 at once (backpressure, not a queue); a declared body over the limit,
413 before it is read (a chunked one is cut at the limit); then the request's model header goes into
the contextvar and the plugin's app runs with the prefix stripped from the path. What the plugin
raises is answered as ``errors.py`` here maps it: the status of a ``ServeRequestError`` (also when
upstream's ``get_model`` wrapped it in its ``ModelLoadError``), else 500; the body carries the error
type and message, never a traceback (the ``error`` event has that).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException

from .context import HEADER, MODEL_ID
from .metrics import Metrics
from .models import ServeRequestError

_HEADER_BYTES = HEADER.encode()


@dataclass
class State:
    ready: bool = False
    draining: bool = False
    cut_short: bool = False


def classify(exc: BaseException) -> tuple[int, str, str]:
    """(status, error type, message) for an exception from the plugin's app."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ServeRequestError):
            return current.status, current.error_type, str(current)
        current = current.__cause__ or current.__context__
    if type(exc).__name__ == "ModelLoadError":  # upstream's wrapper around a loader's own failure
        cause = exc.__cause__
        return 502, type(cause).__name__ if cause else "ModelLoadError", str(exc)
    return 500, type(exc).__name__, str(exc) or type(exc).__name__


async def _send_json(send: Callable[..., Any], status: int, body: Any, headers: list[tuple[bytes, bytes]] = ()) -> None:  # type: ignore[assignment]
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), *headers]})
    await send({"type": "http.response.body", "body": data})


async def _send_text(send: Callable[..., Any], status: int, text: str, content_type: bytes = b"text/plain; charset=utf-8") -> None:
    data = text.encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", content_type), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


class BodyTooLarge(HTTPException):
    """A chunked body passed the limit while the app read it: an HTTPException, so FastAPI's body
    reader lets it through (it turns any other exception into a 400) and the handler answers 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"body over the limit of {limit} bytes (SYNAPSE_SERVE_MAX_BODY)")


#: A declared body over the limit but under this is read and thrown away before the 413, so a client
#: that sends the whole body before reading (most do) gets the 413, not a broken pipe; beyond it, or when
#: the client waits for ``100 Continue``, the 413 goes out at once and the connection is closed.
DISCARD_LIMIT = 64 * 1024 * 1024


async def _discard_body(scope: dict[str, Any], receive: Callable[..., Any], declared: int) -> None:
    if declared > DISCARD_LIMIT or any(n == b"expect" for n, _ in scope["headers"]):
        return
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return


class ServeApp:
    """The ASGI callable uvicorn runs."""

    def __init__(self, *, prefix: str, app_name: str, max_ongoing: int, max_body: int, metrics: Metrics,
                 on_error: Callable[[BaseException, int, str, str], None]) -> None:
        self.prefix, self.app_name = prefix, app_name
        self.max_ongoing, self.max_body = max_ongoing, max_body
        self.metrics, self.on_error = metrics, on_error
        self.state = State()
        self.inner: Any = None  # the plugin's app, set once constructed

    def error_response(self, exc: BaseException) -> tuple[int, dict[str, Any]]:
        status, error_type, message = classify(exc)
        self.metrics.errors[error_type] += 1
        self.on_error(exc, status, error_type, message)
        return status, {"detail": message, "error_type": error_type}

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            return await self._lifespan(receive, send)
        if kind != "http":
            return None
        path: str = scope["path"]
        if path.startswith("/-/") or path == "/metrics":
            return await self._control(path, send)
        prefix = self.prefix
        if prefix and not (path == prefix or path.startswith(prefix + "/")):
            return await _send_json(send, 404, {"detail": f"no route {path}: this server serves under {prefix}/",
                                                "error_type": "NotFound"})
        m, state = self.metrics, self.state
        if state.draining or not state.ready or self.inner is None:
            m.reject()
            why = "draining: the server is shutting down" if state.draining else "starting: not ready yet"
            return await _send_json(send, 503, {"detail": why, "error_type": "Unavailable"},
                                    [(b"retry-after", b"1"), (b"connection", b"close")])
        if m.in_flight >= self.max_ongoing:
            m.reject()
            return await _send_json(send, 503, {
                "detail": f"over max_ongoing_requests ({self.max_ongoing}): retry later",
                "error_type": "Overloaded"}, [(b"retry-after", b"1")])
        model_id = ""
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_body
                except ValueError:
                    too_big = False
                if too_big:
                    m.observe(413, 0.0)
                    await _discard_body(scope, receive, int(value))
                    return await _send_json(send, 413, {
                        "detail": f"body of {int(value)} bytes is over the limit of {self.max_body} "
                                  "(SYNAPSE_SERVE_MAX_BODY)", "error_type": "BodyTooLarge"}, [(b"connection", b"close")])
            elif name == _HEADER_BYTES:
                model_id = value.decode("latin-1")
        await self._forward(scope, receive, send, path[len(prefix):] or "/", model_id)

    async def _forward(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any],
                       path: str, model_id: str) -> None:
        m = self.metrics
        m.in_flight += 1
        t0 = time.perf_counter()
        status = 0
        received = 0
        limit = self.max_body

        async def limited_receive() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        token = MODEL_ID.set(model_id)
        child = dict(scope, path=path, raw_path=path.encode())
        try:
            await self.inner(child, limited_receive, tracking_send)
        except BodyTooLarge as exc:
            if not status:
                status = 413
                await _send_json(send, 413, {"detail": exc.detail, "error_type": "BodyTooLarge"},
                                 [(b"connection", b"close")])
        except BaseException as exc:
            if self.state.draining and not isinstance(exc, Exception):  # cancelled: the drain ran out of time
                self.state.cut_short = True
                raise
            if not status:  # the app's own handler did not answer (or re-raised after answering)
                code, body = self.error_response(exc)
                status = code
                await _send_json(send, code, body)
        finally:
            MODEL_ID.reset(token)
            m.in_flight -= 1
            m.observe(status or 500, time.perf_counter() - t0)

    async def _control(self, path: str, send: Callable[..., Any]) -> None:
        state = self.state
        if path == "/-/healthz":
            if state.ready and not state.draining:
                return await _send_text(send, 200, "success")
            return await _send_text(send, 503, "draining" if state.draining else "starting")
        if path == "/-/routes":
            return await _send_json(send, 200, {self.prefix or "/": self.app_name})
        if path == "/metrics":
            return await _send_text(send, 200, self.metrics.prometheus(state.ready and not state.draining),
                                    b"text/plain; version=0.0.4; charset=utf-8")
        return await _send_json(send, 404, {"detail": f"no route {path}", "error_type": "NotFound"})

    async def _lifespan(self, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        """The plugin app's own startup/shutdown hooks run when it is constructed (server.py), not here."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


__all__ = ["ServeApp", "State", "classify"]
