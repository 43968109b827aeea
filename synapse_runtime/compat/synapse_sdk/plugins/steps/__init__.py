from synapse_runtime.actions.steps import BaseStep, BaseStepContext, StepResult

from .orchestrator import Orchestrator
from .registry import StepRegistry
from .utils import LoggingStep, TimingStep, ValidationStep

__all__ = ["BaseStep", "BaseStepContext", "LoggingStep", "Orchestrator", "StepRegistry", "StepResult", "TimingStep",
           "ValidationStep"]
