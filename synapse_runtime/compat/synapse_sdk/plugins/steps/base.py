from synapse_runtime.steps import BaseStep, StepResult

__all__ = ["BaseStep", "StepResult"]
