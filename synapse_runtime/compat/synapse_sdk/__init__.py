"""synapse-runtime's stand-in for synapse-sdk's import paths (used only when the real one is absent)."""

__synapse_runtime_shim__ = True
