"""The backend's failure kinds, so callers (and the reporter) can tell them apart without parsing text.

All of them are ``BackendError`` (or, for a bad registry file, ``ValidationError``) from
``synapse_runtime.errors``, so the runner maps them to exit codes like any other error.  Messages
name the host and the model or job involved and never contain a token: the client builds them
through its redactor, and ``details`` carries only host, method, path and status.
"""

from __future__ import annotations

from typing import Any

from synapse_runtime.errors import BackendError, ValidationError


class BackendRequestFailed(BackendError):
    """Base of the client's errors: carries the request's host, method, path and HTTP status."""

    def __init__(
        self,
        message: str,
        *,
        host: str,
        method: str,
        path: str,
        status: int | None = None,
        hint: str | None = None,
    ) -> None:
        details: dict[str, Any] = {"host": host, "method": method, "path": path}
        if status is not None:
            details["status"] = status
        super().__init__(message, details=details, hint=hint)
        self.host = host
        self.method = method
        self.path = path
        self.status = status


class BackendAuthError(BackendRequestFailed):
    """401 or 403: the token is missing, wrong, expired or not allowed to do this; retrying cannot help."""


class BackendNotFoundError(BackendRequestFailed):
    """404: no such model or job on this backend (or an unknown id in the offline registry)."""


class BackendUnavailableError(BackendRequestFailed):
    """5xx, 429, a timeout or no connection, still failing after the client's retries."""


class BackendResponseError(BackendRequestFailed):
    """Any other refusal (400, 405, a redirect, TLS verification) or a response that is not JSON."""


class ModelRegistryError(ValidationError):
    """The offline registry file (``SYNAPSE_MODELS_FILE``) is missing, unreadable or malformed."""


__all__ = [
    "BackendAuthError",
    "BackendNotFoundError",
    "BackendRequestFailed",
    "BackendResponseError",
    "BackendUnavailableError",
    "ModelRegistryError",
]
