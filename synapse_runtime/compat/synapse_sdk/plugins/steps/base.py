from synapse_runtime.actions.steps import BaseStep, StepResult

__all__ = ["BaseStep", "StepResult"]
