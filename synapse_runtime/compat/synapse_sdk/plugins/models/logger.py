from synapse_runtime.actions.loggers import LogLevel, MessageLogData, ProgressData
from ...loggers import LogEntry, LoggerBackend

__all__ = ["LogEntry", "LogLevel", "LoggerBackend", "MessageLogData", "ProgressData"]
