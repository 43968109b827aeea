from synapse_runtime.steps import StepRegistry

__all__ = ["StepRegistry"]
