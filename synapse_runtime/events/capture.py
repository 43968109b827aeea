"""Keeping stdout pure: everything the plugin, its libraries or its subprocesses print becomes events.

Capture happens at the file-descriptor level (``dup2`` of pipes over fds 1 and 2), because
``sys.stdout`` swaps miss C extensions and child processes.  The event writer keeps a private
duplicate of the original stdout, so only JSON lines ever reach it.  ``logging`` records become
``log`` events through a root handler.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from . import shapes

Emit = Callable[[str, dict[str, Any]], None]
MAX_LINE = _MAX_LINE = 64 * 1024  # longer output lines are split (public: serve/stdout.py splits alike)
_LEVELS = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}


def _level_name(levelno: int) -> str:
    for threshold in (50, 40, 30, 20):
        if levelno >= threshold:
            return _LEVELS[threshold]
    return "DEBUG"


class EventLogHandler(logging.Handler):
    """Turns ``logging`` records into ``log`` events (level, logger, message[, exc_info])."""

    def __init__(self, emit: Emit, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self._emit = emit

    def emit(self, record: logging.LogRecord) -> None:
        try:
            exc_info = logging.Formatter().formatException(record.exc_info) if record.exc_info else None
            self._emit("log", shapes.log(_level_name(record.levelno), record.name, record.getMessage(), exc_info))
        except Exception:
            self.handleError(record)


class _PipeReader(threading.Thread):
    def __init__(self, fd: int, stream: str, emit: Emit) -> None:
        super().__init__(name=f"synapse-capture-{stream}", daemon=True)
        self.fd = fd
        self.stream = stream
        self._emit = emit

    def run(self) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self._send(line)
            while len(pending) > _MAX_LINE:
                self._send(pending[:_MAX_LINE])
                pending = pending[_MAX_LINE:]
        if pending:
            self._send(pending)
        os.close(self.fd)

    def _send(self, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace")
        if text.endswith("\r"):
            text = text[:-1]
        self._emit("output", shapes.output(self.stream, text))


class OutputCapture:
    """Redirects fds 1 and 2 into pipes read by threads; ``events_fd`` is the real stdout.

    Use as a context manager or call ``start``/``stop``; ``stop`` restores both fds and drains
    what was printed, so every ``output`` event precedes the run's ``end`` event.
    """

    def __init__(self, emit: Emit | None = None, *, log_level: int = logging.INFO) -> None:
        self._emit = emit
        self.log_level = log_level
        self.events_fd = -1
        self._saved: dict[int, int] = {}
        self._readers: list[_PipeReader] = []
        self._handler: EventLogHandler | None = None
        self._old_root_level: int | None = None

    def set_emit(self, emit: Emit) -> None:
        self._emit = emit

    def _dispatch(self, type: str, fields: dict[str, Any]) -> None:
        if self._emit is not None:
            self._emit(type, fields)

    def start(self) -> int:
        """Start capturing; returns the fd on which events must be written (a dup of stdout)."""
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        self.events_fd = os.dup(1)
        os.set_inheritable(self.events_fd, False)
        for fd, name in ((1, "stdout"), (2, "stderr")):
            self._saved[fd] = os.dup(fd)
            os.set_inheritable(self._saved[fd], False)
            read_fd, write_fd = os.pipe()
            os.set_inheritable(read_fd, False)
            os.dup2(write_fd, fd)
            os.close(write_fd)
            reader = _PipeReader(read_fd, name, self._dispatch)
            reader.start()
            self._readers.append(reader)
        for stream in (sys.stdout, sys.stderr):
            reconfigure = getattr(stream, "reconfigure", None)
            if reconfigure is not None:
                try:
                    reconfigure(line_buffering=True)
                except Exception:
                    pass
        root = logging.getLogger()
        self._handler = EventLogHandler(self._dispatch)
        root.addHandler(self._handler)
        if root.level == logging.WARNING or root.level == logging.NOTSET:
            self._old_root_level = root.level
            root.setLevel(self.log_level)
        return self.events_fd

    def stop(self, timeout: float = 2.0) -> None:
        """Restore fds 1 and 2 and wait (bounded) for the readers to drain the pipes."""
        if not self._saved:
            return
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        root = logging.getLogger()
        if self._handler is not None:
            root.removeHandler(self._handler)
            self._handler = None
        if self._old_root_level is not None:
            root.setLevel(self._old_root_level)
            self._old_root_level = None
        for fd, saved in self._saved.items():
            os.dup2(saved, fd)
            os.close(saved)
        self._saved.clear()
        # A daemon child that inherited the pipe keeps it open: don't wait for it forever.
        for reader in self._readers:
            reader.join(timeout)
        self._readers.clear()

    def __enter__(self) -> OutputCapture:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["EventLogHandler", "OutputCapture"]
