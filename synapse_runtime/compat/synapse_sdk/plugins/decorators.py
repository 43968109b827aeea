from synapse_runtime.decorators import action

__all__ = ["action"]
