"""synapse-runtime: run Synapse plugin actions in containers, or locally, by one contract.

The public API, from one place.  Names load on first use (PEP 562), so ``from synapse_runtime
import action`` costs only the modules that ``action`` needs: start-up time is part of every
container's run, and it is measured (bench/events.py).
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # actions
    "BaseAction": "actions.base_action", "NoResult": "actions.base_action", "action": "actions.decorators",
    "BaseInferenceAction": "actions.inference", "InferenceContext": "actions.inference",
    "InferenceProgressCategories": "actions.inference",
    "BaseStep": "actions.steps", "BaseStepContext": "actions.steps", "Orchestrator": "actions.steps",
    "StepRegistry": "actions.steps", "StepResult": "actions.steps",
    "BaseServeDeployment": "serve.deployment", "BaseDeploymentAction": "serve.deploy_action",
    # context
    "RuntimeContext": "actions.context", "PluginEnvironment": "actions.env",
    "BaseLogger": "actions.loggers", "ConsoleLogger": "actions.loggers", "EventLogger": "actions.loggers",
    "LogLevel": "actions.loggers", "MemoryLogger": "actions.loggers",
    # plugins and runs
    "ActionConfig": "contract.plugin", "PluginConfig": "contract.plugin", "run": "contract.runner",
    "RunOptions": "contract.runner", "run_plugin": "contract.inprocess",
    # errors
    "ActionNotFoundError": "errors", "ArchiveError": "errors", "BackendError": "errors", "Cancelled": "errors",
    "ChecksumMismatchError": "errors", "ExecutionError": "errors", "ExitCode": "errors", "ModelLoadError": "errors",
    "PluginError": "errors", "PluginLoadError": "errors", "PluginRunError": "errors", "StorageError": "errors",
    "ValidationError": "errors",
}

#: Modules that lived flat in ``synapse_runtime/`` before the package showed its two audiences
#: (``actions/`` for plugin authors, ``contract/`` for the run).  Their old paths stay importable,
#: as the same module objects, so ``isinstance`` and ``monkeypatch`` agree under either name.
_MOVED: dict[str, str] = {
    **{m: "actions" for m in ("base_action", "context", "decorators", "env", "inference", "log_model", "loggers",
                              "step_utils", "steps", "types")},
    **{m: "contract" for m in ("cancellation", "children", "failures", "gpu", "inprocess", "inputs", "knobs", "merge",
                               "outputs", "plugin", "plugin_config", "runner", "settings", "sharding", "signals",
                               "workdir")},
}


class _MovedModules:
    """Serves an old flat path (``synapse_runtime.steps``) as the module at its new one.

    Last on ``sys.meta_path``: asked only after the normal finders found nothing, so it costs
    ordinary imports nothing."""

    @staticmethod
    def find_spec(fullname: str, path: Any = None, target: Any = None) -> Any:
        prefix, _, leaf = fullname.rpartition(".")
        if prefix != __name__ or leaf not in _MOVED:
            return None
        import importlib.util

        return importlib.util.spec_from_loader(fullname, _MovedModules)

    @staticmethod
    def create_module(spec: Any) -> Any:
        leaf = spec.name.rpartition(".")[2]
        return importlib.import_module(f"{__name__}.{_MOVED[leaf]}.{leaf}")

    @staticmethod
    def exec_module(module: Any) -> None:
        return None


if not any(f is _MovedModules for f in sys.meta_path):
    sys.meta_path.append(_MovedModules)


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
    from .actions.base_action import BaseAction, NoResult
    from .actions.context import RuntimeContext
    from .actions.decorators import action
    from .actions.env import PluginEnvironment
    from .errors import (
        ActionNotFoundError, ArchiveError, BackendError, Cancelled, ChecksumMismatchError, ExecutionError,
        ExitCode, ModelLoadError, PluginError, PluginLoadError, PluginRunError, StorageError, ValidationError,
    )
    from .actions.inference import BaseInferenceAction, InferenceContext, InferenceProgressCategories
    from .contract.inprocess import run_plugin
    from .actions.loggers import BaseLogger, ConsoleLogger, EventLogger, LogLevel, MemoryLogger
    from .contract.plugin import ActionConfig, PluginConfig
    from .contract.runner import RunOptions, run
    from .serve.deploy_action import BaseDeploymentAction
    from .serve.deployment import BaseServeDeployment
    from .actions.steps import BaseStep, BaseStepContext, Orchestrator, StepRegistry, StepResult

__all__ = sorted([*_EXPORTS, "__version__"])
