"""synapse-runtime: run Synapse plugin actions in containers, or locally, by one contract.

The public API, from one place.  Names load on first use (PEP 562), so ``from synapse_runtime
import action`` costs only the modules that ``action`` needs: start-up time is part of every
container's run, and it is measured (bench/events.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # actions
    "BaseAction": "base_action", "NoResult": "base_action", "action": "decorators",
    "BaseInferenceAction": "inference", "InferenceContext": "inference", "InferenceProgressCategories": "inference",
    "BaseStep": "steps", "BaseStepContext": "steps", "Orchestrator": "steps", "StepRegistry": "steps",
    "StepResult": "steps",
    "BaseServeDeployment": "serve.deployment", "BaseDeploymentAction": "serve.deploy_action",
    # context
    "RuntimeContext": "context", "PluginEnvironment": "env",
    "BaseLogger": "loggers", "ConsoleLogger": "loggers", "EventLogger": "loggers", "LogLevel": "loggers",
    "MemoryLogger": "loggers",
    # plugins and runs
    "ActionConfig": "plugin", "PluginConfig": "plugin", "run": "runner", "RunOptions": "runner",
    "run_plugin": "inprocess",
    # errors
    "ActionNotFoundError": "errors", "ArchiveError": "errors", "BackendError": "errors", "Cancelled": "errors",
    "ChecksumMismatchError": "errors", "ExecutionError": "errors", "ExitCode": "errors", "ModelLoadError": "errors",
    "PluginError": "errors", "PluginLoadError": "errors", "PluginRunError": "errors", "StorageError": "errors",
    "ValidationError": "errors",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'synapse_runtime' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:
    from .base_action import BaseAction, NoResult
    from .context import RuntimeContext
    from .decorators import action
    from .env import PluginEnvironment
    from .errors import (
        ActionNotFoundError, ArchiveError, BackendError, Cancelled, ChecksumMismatchError, ExecutionError,
        ExitCode, ModelLoadError, PluginError, PluginLoadError, PluginRunError, StorageError, ValidationError,
    )
    from .inference import BaseInferenceAction, InferenceContext, InferenceProgressCategories
    from .inprocess import run_plugin
    from .loggers import BaseLogger, ConsoleLogger, EventLogger, LogLevel, MemoryLogger
    from .plugin import ActionConfig, PluginConfig
    from .runner import RunOptions, run
    from .serve.deploy_action import BaseDeploymentAction
    from .serve.deployment import BaseServeDeployment
    from .steps import BaseStep, BaseStepContext, Orchestrator, StepRegistry, StepResult

__all__ = sorted([*_EXPORTS, "__version__"])
