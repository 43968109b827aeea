from .logger import LogEntry, LoggerBackend, LogLevel, MessageLogData, ProgressData

__all__ = ["LogEntry", "LogLevel", "LoggerBackend", "MessageLogData", "ProgressData"]
