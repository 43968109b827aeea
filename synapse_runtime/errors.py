"""The error hierarchy and the one table of exit codes.

Every failure a run can meet maps to exactly one exit code, so operators (and Kubernetes'
``podFailurePolicy``) can decide from the code alone whether a retry can help.  The class names
match upstream synapse-sdk so that plugins catching ``ExecutionError`` or ``ValidationError`` keep
working; ``exit_code`` and ``error_type`` are what the runner reports.
"""

from __future__ import annotations

import enum
from typing import Any


class ExitCode(enum.IntEnum):
    """The contract's exit codes (docs/contract.md); the only place they are defined."""

    SUCCEEDED = 0
    FAILED = 1  # the action failed: ExecutionError or any exception from user code
    INVALID_INPUT = 2  # params, env, options: never retry
    NOT_FOUND = 3  # plugin or action missing, or it fails to import: never retry
    STORAGE = 4  # checkpoint fetch or output upload failed after retries: retry
    CANCELLED_SIGINT = 130
    CANCELLED_SIGTERM = 143


#: Whether a job that exited with this code may succeed when run again (used by docs and k8s policy).
RETRYABLE: dict[ExitCode, bool | None] = {
    ExitCode.SUCCEEDED: None,
    ExitCode.FAILED: True,
    ExitCode.INVALID_INPUT: False,
    ExitCode.NOT_FOUND: False,
    ExitCode.STORAGE: True,
    ExitCode.CANCELLED_SIGINT: None,
    ExitCode.CANCELLED_SIGTERM: None,
}


class PluginError(Exception):
    """Base of every error the runtime reports; carries its exit code and structured details.

    ``details`` holds machine-readable context (field errors, the URI that failed, ...): it goes to
    the ``error`` event and ``result.json`` as is, so it must be JSON-serializable and secret-free.
    """

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str = "", *, details: Any = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.hint = hint

    @property
    def error_type(self) -> str:
        return type(self).__name__

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class ValidationError(PluginError):
    """Invalid input: params that do not fit the model, a bad env file, a bad option."""

    exit_code = ExitCode.INVALID_INPUT


class ActionNotFoundError(PluginError):
    """The plugin has no such action, or its entrypoint cannot be resolved."""

    exit_code = ExitCode.NOT_FOUND


class PluginLoadError(ActionNotFoundError):
    """The plugin directory, its config.yaml or its code cannot be loaded."""


class ExecutionError(PluginError):
    """Raised by actions to say that the work itself failed."""

    exit_code = ExitCode.FAILED


class ModelLoadError(ExecutionError):
    """A model could not be fetched or loaded."""


class PluginRunError(ExecutionError):
    """A run could not complete for a reason outside the action's own code."""


class StorageError(PluginError):
    """A checkpoint fetch or an output upload failed after its retries."""

    exit_code = ExitCode.STORAGE


class InvalidURIError(StorageError):
    """A storage URI that cannot name anything (unknown scheme, no bucket): an input error, so the exit
    code says never retry, while ``except StorageError`` still catches it."""

    exit_code = ExitCode.INVALID_INPUT


class ArchiveError(StorageError):
    """An archive is corrupt, unsafe (paths escaping the target, links, bombs) or too large."""


class ChecksumMismatchError(StorageError):
    """Downloaded bytes do not match the expected size, ETag or sha256."""


class BackendError(PluginError):
    """The Synapse backend refused or failed a request (never carries the token)."""

    exit_code = ExitCode.FAILED


class Cancelled(BaseException):
    """Raised in the main thread when SIGTERM or SIGINT arrives.

    A ``BaseException`` (like ``KeyboardInterrupt``) so that an action's ``except Exception`` does
    not swallow a cancellation, while ``finally`` blocks and step rollbacks still run.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"cancelled by signal {signum}")
        self.signum = signum

    @property
    def exit_code(self) -> ExitCode:
        import signal

        return ExitCode.CANCELLED_SIGINT if self.signum == signal.SIGINT else ExitCode.CANCELLED_SIGTERM


def exit_code_for(exc: BaseException) -> ExitCode:
    """The exit code for any exception: ours carry one, anything from user code is a failure."""
    code = getattr(exc, "exit_code", None)
    return code if isinstance(code, ExitCode) else ExitCode.FAILED


__all__ = [
    "ActionNotFoundError",
    "ArchiveError",
    "BackendError",
    "Cancelled",
    "ChecksumMismatchError",
    "ExecutionError",
    "ExitCode",
    "ModelLoadError",
    "PluginError",
    "PluginLoadError",
    "PluginRunError",
    "RETRYABLE",
    "StorageError",
    "InvalidURIError",
    "ValidationError",
    "exit_code_for",
]
