from synapse_runtime import (
    ActionConfig,
    ActionNotFoundError,
    BaseAction,
    BaseInferenceAction,
    BaseStep,
    BaseStepContext,
    ExecutionError,
    InferenceContext,
    InferenceProgressCategories,
    Orchestrator,
    PluginConfig,
    PluginError,
    RuntimeContext,
    StepRegistry,
    StepResult,
    ValidationError,
    action,
)
from synapse_runtime.inprocess import run_plugin

__all__ = [
    "ActionConfig", "ActionNotFoundError", "BaseAction", "BaseInferenceAction", "BaseStep", "BaseStepContext",
    "ExecutionError", "InferenceContext", "InferenceProgressCategories", "Orchestrator", "PluginConfig",
    "PluginError", "RuntimeContext", "StepRegistry", "StepResult", "ValidationError", "action", "run_plugin",
]
