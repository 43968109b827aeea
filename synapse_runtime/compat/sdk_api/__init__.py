"""Parts of upstream's plugin API the runtime itself has no use for, written for the shim.

The runtime's own modules (base_action, steps, loggers, context, plugin) carry the API actions
use at run time; what lives here (config.yaml's pydantic model with upstream's rules, the enums)
serves plugins and tools that import them through ``synapse_sdk.plugins.config``/``.enums``.
"""
