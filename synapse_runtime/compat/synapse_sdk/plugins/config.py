from synapse_runtime.compat.sdk_api.config import ActionConfig, PluginConfig, PluginRequires

__all__ = ["ActionConfig", "PluginConfig", "PluginRequires"]
