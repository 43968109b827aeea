from synapse_runtime.loggers import BaseLogger, ConsoleLogger, LogLevel

__all__ = ["BaseLogger", "ConsoleLogger", "LogLevel"]
