from synapse_runtime.loggers import LogLevel, MessageLogData, ProgressData
from ...loggers import LogEntry, LoggerBackend

__all__ = ["LogEntry", "LogLevel", "LoggerBackend", "MessageLogData", "ProgressData"]
