"""``sys.stdout`` while serving: each printed line becomes an ``output`` event in-process.

Why: a serving process answers thousands of requests a second, and plugin code may print on every
one (upstream's ``BaseServeDeployment.get_model`` prints the model token per request, with
``flush=True``). Through the fd-level capture each such line costs a ``write`` to the pipe, a wake-up
of the capture thread, a decode and an event; here it costs one call, and the server's throttle
(``Server._captured``) drops most of them before anything is written. Redaction is unchanged: the
events writer redacts every event. What bypasses ``sys.stdout`` (C extensions, subprocesses, writes
to fd 1) still goes through the fd capture.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from typing import Any

from ..events import shapes
from ..events.capture import MAX_LINE

Emit = Callable[[str, dict[str, Any]], None]


class LineEmitter(io.TextIOBase):
    """A text stream that turns complete lines into ``output`` events of ``stream``."""

    def __init__(self, stream: str, emit: Emit, underlying: Any) -> None:
        super().__init__()
        self._stream = stream
        self._emit = emit
        self._underlying = underlying  # the captured sys.stdout: its fd and encoding, for code that asks
        self._pending = ""
        self._lock = threading.Lock()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._underlying, "encoding", "utf-8") or "utf-8"

    @property
    def buffer(self) -> Any:
        """The captured stdout's bytes stream: binary writes keep going through the fd capture."""
        return self._underlying.buffer

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._underlying.fileno()

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self._lock:
            data = self._pending + text
            *lines, self._pending = data.split("\n")
            while len(self._pending) > MAX_LINE:
                lines.append(self._pending[:MAX_LINE])
                self._pending = self._pending[MAX_LINE:]
        for line in lines:
            line = line.removesuffix("\r")
            for start in range(0, max(len(line), 1), MAX_LINE):
                self._emit("output", shapes.output(self._stream, line[start:start + MAX_LINE]))
        return len(text)

    def flush(self) -> None:  # lines are emitted as they complete; a partial line waits for close()
        pass

    def close(self) -> None:
        with self._lock:
            rest, self._pending = self._pending, ""
        if rest:
            self._emit("output", shapes.output(self._stream, rest.removesuffix("\r")))
        super().close()


__all__ = ["LineEmitter"]
