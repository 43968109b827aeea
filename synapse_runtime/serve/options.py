"""What one serving process is told: knobs, config.yaml ``serve_options``, and upstream's route prefix.

``serve_options`` are upstream's Ray Serve deployment options, read from the served action's entry
and, as upstream's ``deployment`` action reads them, from the ``deployment`` action's entry (the served
action's own keys win). Honoured in one container: ``batch`` (``max_batch_size``,
``batch_wait_timeout_s``), ``max_ongoing_requests`` (503 beyond it), ``max_num_models_per_replica``
(the model LRU). ``num_replicas`` and ``autoscaling_config`` are a Kubernetes matter (replicas of the
Deployment, an HPA: docs/serving.md); the rest are Ray's and ignored, each named once in the start event.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..contract.settings import Settings, build
from ..errors import ValidationError

#: serve_options keys that mean something here; others are reported as ignored.
HONOURED = ("batch", "max_ongoing_requests", "max_num_models_per_replica")
#: Ray's default for models kept per replica (``@serve.multiplexed``), ours when config.yaml names none.
DEFAULT_MODELS = 3
#: Upstream's (Ray's) default max_ongoing_requests is 5 per replica; ours is higher because one
#: container is one replica with an async server, and 503 beyond it is meant as backpressure, not as the norm.
DEFAULT_MAX_ONGOING = 64


@dataclass(frozen=True)
class BatchOptions:
    max_batch_size: int = 8
    batch_wait_timeout_s: float = 0.1


@dataclass(frozen=True)
class ServeOptions:
    host: str
    port: int
    prefix: str
    drain_s: float
    max_ongoing: int
    max_body: int
    max_models: int
    metrics_interval: float
    batch: BatchOptions | None = None
    ignored: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)


def route_prefix(code: str | None, version: str | None, env: Any) -> str:
    """Upstream's prefix: ``/<SYNAPSE_PLUGIN_RELEASE_CHECKSUM>``, else ``/<md5 of SYNAPSE_PLUGIN_RELEASE_CODE
    or "code@version">``; ``SYNAPSE_SERVE_ROUTE_PREFIX`` overrides both (``env``: a mapping or ``ctx.env``)."""
    def get(name: str) -> str:
        value = env.get_str(name, "") if hasattr(env, "get_str") else env.get(name, "")
        return str(value or "").strip()

    override = get("SYNAPSE_SERVE_ROUTE_PREFIX")
    if override:
        return "/" + override.strip("/") if override.strip("/") else ""
    checksum = get("SYNAPSE_PLUGIN_RELEASE_CHECKSUM")
    if checksum:
        return f"/{checksum}"
    app_name = get("SYNAPSE_PLUGIN_RELEASE_CODE") or (f"{code}@{version}" if code else "")
    if not app_name:
        from pathlib import Path

        from ..contract.plugin import load_plugin

        config = load_plugin(Path.cwd()).config
        app_name = f"{config.code or config.name}@{config.version}"
    return "/" + hashlib.md5(app_name.encode()).hexdigest()  # noqa: S324 - upstream's route name, not security


def _bad(key: str, value: Any, allowed: str) -> ValidationError:
    return ValidationError(f"config.yaml serve_options.{key}={value!r} is not valid: expected {allowed}",
                           details={"key": f"serve_options.{key}", "value": repr(value)},
                           hint=f"fix serve_options.{key} in config.yaml")


def _positive(options: Mapping[str, Any], key: str, kind: type, default: Any) -> Any:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 or kind is int and value != int(value):
        raise _bad(key, value, f"a positive {'integer' if kind is int else 'number'}")
    return kind(value)


def resolve(serve_options: Mapping[str, Any], data: Mapping[str, str], *, code: str | None, version: str,
            host: str | None = None, port: int | None = None, settings: Settings | None = None) -> ServeOptions:
    """Knobs (CLI flags win) and serve_options -> ServeOptions; ValidationError (exit 2) on a bad value.

    ``settings``: the server's one settings object (built from ``data`` when not given)."""
    settings = build(data) if settings is None else settings
    batch = None
    if serve_options.get("batch") is not None:
        raw = serve_options["batch"]
        if not isinstance(raw, Mapping):
            raise _bad("batch", raw, "a mapping with max_batch_size and batch_wait_timeout_s")
        wait = raw.get("batch_wait_timeout_s", 0.1)
        if isinstance(wait, bool) or not isinstance(wait, (int, float)) or wait < 0:
            raise _bad("batch.batch_wait_timeout_s", wait, "a number >= 0 (seconds)")
        batch = BatchOptions(_positive(raw, "max_batch_size", int, 8), float(wait))
    max_ongoing = settings.serve_max_ongoing_requests or _positive(
        serve_options, "max_ongoing_requests", int, DEFAULT_MAX_ONGOING)
    max_models = settings.serve_max_models or _positive(
        serve_options, "max_num_models_per_replica", int, DEFAULT_MODELS)
    port = settings.serve_port if port is None else port
    if not 0 <= port <= 65535:
        raise ValidationError(f"port {port} is not a TCP port", details={"variable": "SYNAPSE_SERVE_PORT"},
                              hint="give 0-65535 (0: any free port) in --port or SYNAPSE_SERVE_PORT")
    return ServeOptions(
        host=host or settings.serve_host,
        port=port,
        prefix=route_prefix(code, version, data),
        drain_s=settings.serve_drain,
        max_ongoing=int(max_ongoing),
        max_body=settings.serve_max_body,
        max_models=int(max_models),
        metrics_interval=settings.serve_metrics_interval,
        batch=batch,
        ignored=tuple(sorted(k for k in serve_options if k not in HONOURED)),
        raw=dict(serve_options),
    )


__all__ = ["BatchOptions", "DEFAULT_MAX_ONGOING", "DEFAULT_MODELS", "ServeOptions", "resolve", "route_prefix"]
