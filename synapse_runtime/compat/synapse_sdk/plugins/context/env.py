from synapse_runtime.actions.env import PluginEnvironment

__all__ = ["PluginEnvironment"]
