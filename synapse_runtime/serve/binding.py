"""A plugin's FastAPI ``app`` whose routes take ``self``, bound to one deployment instance.

Upstream's plugins declare routes on a module-level app inside the class body
(``@app.post('/') async def infer(self, data: InferenceInput)``); Ray's ``serve.ingress`` binds them
to the replica's instance, and with recent FastAPI versions it loses ``self`` (every request a 422).
Here each route whose endpoint is a function of the deployment class is added again, to a new app,
with the instance's bound method as its endpoint: FastAPI then sees the signature without ``self``,
in any version, and the request body is validated against the route's own model. Other routes,
middleware and exception handlers of the plugin's app are carried over unchanged.
"""

from __future__ import annotations

import types
from typing import Any

#: What an APIRoute keeps that ``add_api_route`` takes back (attributes absent in an older FastAPI are skipped).
_ROUTE_ARGS = ("response_model", "status_code", "tags", "dependencies", "summary", "description",
               "response_description", "responses", "deprecated", "name", "include_in_schema", "response_class",
               "response_model_exclude_unset", "response_model_exclude_defaults", "response_model_exclude_none",
               "response_model_by_alias", "openapi_extra")


def source_app(cls: type) -> Any:
    """The deployment's FastAPI app: ``cls.app``, else the module-level ``app`` of the class's module."""
    import sys

    app = getattr(cls, "app", None)
    if app is None:
        app = getattr(sys.modules.get(cls.__module__), "app", None)
    return app


def _class_functions(cls: type) -> dict[int, str]:
    return {id(value): name for klass in reversed(cls.__mro__) for name, value in vars(klass).items()
            if isinstance(value, types.FunctionType)}


def bind_app(cls: type, instance: Any, title: str) -> Any:
    """A new FastAPI app with ``cls``'s app routes bound to ``instance`` (and the rest copied)."""
    from fastapi import FastAPI
    from fastapi.routing import APIRoute

    source = source_app(cls)
    app = FastAPI(title=title)
    if source is None:
        return app
    methods = _class_functions(cls)
    for route in source.router.routes:
        if isinstance(route, APIRoute) and id(route.endpoint) in methods:
            bound = types.MethodType(route.endpoint, instance)
            kwargs = {k: getattr(route, k) for k in _ROUTE_ARGS if hasattr(route, k)}
            app.add_api_route(route.path, bound, methods=sorted(route.methods or ["GET"]), **kwargs)
        elif route.path not in ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"):
            app.router.routes.append(route)
    for key, handler in getattr(source, "exception_handlers", {}).items():
        app.add_exception_handler(key, handler)
    app.user_middleware = [*getattr(source, "user_middleware", []), *app.user_middleware]
    app.router.on_startup.extend(getattr(source.router, "on_startup", []))
    app.router.on_shutdown.extend(getattr(source.router, "on_shutdown", []))
    return app


__all__ = ["bind_app", "source_app"]
