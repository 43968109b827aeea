from synapse_runtime.base_action import BaseAction, NoResult

__all__ = ["BaseAction", "NoResult"]
