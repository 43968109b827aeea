from synapse_runtime import (
    ActionNotFoundError,
    BaseAction,
    BaseInferenceAction,
    BaseStep,
    BaseStepContext,
    ExecutionError,
    InferenceContext,
    InferenceProgressCategories,
    NoResult,
    PluginError,
    RuntimeContext,
    StepResult,
    ValidationError,
    action,
)
from synapse_runtime.compat.sdk_api.config import ActionConfig, PluginConfig
from synapse_runtime.compat.sdk_api.enums import MetricsCategory, PluginCategory
from synapse_runtime.compat.sdk_api.results import validate_result
from synapse_runtime.contract.inprocess import run_plugin
from synapse_runtime.serve.deploy_action import BaseDeploymentAction
from synapse_runtime.serve.deployment import BaseServeDeployment
from .steps import LoggingStep, Orchestrator, StepRegistry, TimingStep, ValidationStep

__all__ = [
    "BaseDeploymentAction", "BaseServeDeployment",
    "ActionConfig", "ActionNotFoundError", "BaseAction", "BaseInferenceAction", "BaseStep", "BaseStepContext",
    "ExecutionError", "InferenceContext", "InferenceProgressCategories", "LoggingStep", "MetricsCategory",
    "NoResult", "Orchestrator", "PluginCategory", "PluginConfig", "PluginError", "RuntimeContext",
    "StepRegistry", "StepResult", "TimingStep", "ValidationError", "ValidationStep", "action", "run_plugin",
    "validate_result",
]
