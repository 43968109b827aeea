from synapse_runtime.context import RuntimeContext
from synapse_runtime.env import PluginEnvironment

__all__ = ["PluginEnvironment", "RuntimeContext"]
