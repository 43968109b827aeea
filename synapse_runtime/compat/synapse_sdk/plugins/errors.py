from synapse_runtime.errors import (
    ActionNotFoundError,
    ArchiveError,
    ChecksumMismatchError,
    ExecutionError,
    ModelLoadError,
    PluginError,
    PluginRunError,
    ValidationError,
)

__all__ = [
    "ActionNotFoundError", "ArchiveError", "ChecksumMismatchError", "ExecutionError", "ModelLoadError",
    "PluginError", "PluginRunError", "ValidationError",
]
