from synapse_runtime.actions.context import RuntimeContext
from synapse_runtime.actions.env import PluginEnvironment

__all__ = ["PluginEnvironment", "RuntimeContext"]
