"""The Synapse backend: ``ctx.client``, models by id, and job status reporting.

Everything here is optional: without ``SYNAPSE_HOST`` and a token the runtime works offline (models
from ``SYNAPSE_MODELS_FILE``, status only in the JSON-lines stream). Importing this package costs
nearly nothing: the submodules load on first use of a name, and HTTP machinery on first request.

* ``BackendClient`` (client.py): ``get_model``, ``update_job``, ``create_logs`` over upstream's REST API.
* ``ModelRegistry`` (registry.py): the offline ``get_model`` from a JSON/YAML file.
* ``JobReporter`` (reporter.py): mirrors the event stream to the job (status, progress, metrics, logs).
* records.py: upstream's ``progress_record`` / ``metrics_record`` / log-entry shapes.
* See docs/backend.md.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from synapse_runtime.backend.client import BackendClient
    from synapse_runtime.backend.exceptions import (
        BackendAuthError,
        BackendNotFoundError,
        BackendRequestFailed,
        BackendResponseError,
        BackendUnavailableError,
        ModelRegistryError,
    )
    from synapse_runtime.backend.registry import ModelRegistry
    from synapse_runtime.backend.reporter import JobReporter

_EXPORTS = {
    "BackendClient": "client",
    "ModelRegistry": "registry",
    "JobReporter": "reporter",
    "BackendAuthError": "exceptions",
    "BackendNotFoundError": "exceptions",
    "BackendRequestFailed": "exceptions",
    "BackendResponseError": "exceptions",
    "BackendUnavailableError": "exceptions",
    "ModelRegistryError": "exceptions",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


def resolve_model_source(env: Mapping[str, str]) -> BackendClient | ModelRegistry | None:
    """Where ``get_model(id)`` is answered from: the backend when it is configured (``SYNAPSE_HOST``
    and a token), else the offline registry when ``SYNAPSE_MODELS_FILE`` is set, else None."""
    from synapse_runtime.backend.client import BackendClient
    from synapse_runtime.backend.registry import ModelRegistry

    client = BackendClient.from_env(env)
    if client is not None:
        return client
    return ModelRegistry.from_env(env)


__all__ = [*_EXPORTS, "resolve_model_source"]
