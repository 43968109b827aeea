from synapse_runtime.loggers import LogLevel

__all__ = ["LogLevel"]
