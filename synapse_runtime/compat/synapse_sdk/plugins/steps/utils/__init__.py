from synapse_runtime.step_utils import LoggingStep, TimingStep, ValidationStep

__all__ = ["LoggingStep", "TimingStep", "ValidationStep"]
