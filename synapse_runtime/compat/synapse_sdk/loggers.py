from synapse_runtime.loggers import (
    BaseLogger,
    ConsoleLogger,
    LogLevel,
    MessageLogData,
    NoOpLogger,
    ProgressData,
)

__all__ = ["BaseLogger", "ConsoleLogger", "LogLevel", "MessageLogData", "NoOpLogger", "ProgressData"]
