from synapse_runtime.actions.steps import BaseStepContext

__all__ = ["BaseStepContext"]
