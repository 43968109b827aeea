from synapse_runtime.step_utils import LoggingStep, TimingStep, ValidationStep
from synapse_runtime.steps import BaseStep, BaseStepContext, Orchestrator, StepRegistry, StepResult

__all__ = ["BaseStep", "BaseStepContext", "LoggingStep", "Orchestrator", "StepRegistry", "StepResult", "TimingStep",
           "ValidationStep"]
