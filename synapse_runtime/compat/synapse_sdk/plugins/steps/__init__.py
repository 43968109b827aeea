from synapse_runtime.steps import BaseStep, BaseStepContext, Orchestrator, StepRegistry, StepResult

__all__ = ["BaseStep", "BaseStepContext", "Orchestrator", "StepRegistry", "StepResult"]
