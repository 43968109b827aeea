from synapse_runtime.steps import BaseStepContext

__all__ = ["BaseStepContext"]
