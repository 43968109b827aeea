from synapse_runtime.env import PluginEnvironment

__all__ = ["PluginEnvironment"]
