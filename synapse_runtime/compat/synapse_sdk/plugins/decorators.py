from synapse_runtime.actions.decorators import action

__all__ = ["action"]
