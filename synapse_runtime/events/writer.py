"""The JSON-lines event writer: one event per line, numbered, timestamped, redacted, fast.

Why it is hand-tuned: actions log from tight loops (per batch, per sample), so the writer is on
the hot path of user code.  The common fields are pre-encoded once, the timestamp's second-level
prefix is cached, and each line is one ``os.write`` so that a crash never leaves half a line and
no user-space buffer can hold an event back.  Progress is coalesced per category (first, last,
and at most one line per ``progress_interval``): the final state is never lost.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from ..jsonable import dumps_ascii as dumps
from . import shapes
from .redact import Redactor
from .shapes import SCHEMA_VERSION
Listener = Callable[[dict[str, Any]], None]
Renderer = Callable[[dict[str, Any]], str | None]


class _ProgressState:
    __slots__ = ("last_emit", "last", "pending")

    def __init__(self) -> None:
        self.last_emit = 0.0
        self.last: tuple[float, float] | None = None
        self.pending: tuple[float, float] | None = None


class EventWriter:
    """Writes contract events to a file descriptor.

    ``renderer`` swaps JSON for a human view (``--pretty``); ``listeners`` receive every event as a
    dict (the backend reporter); both are optional so the plain JSON path stays lean.
    """

    def __init__(
        self,
        fd: int,
        *,
        job_id: str | None = None,
        redactor: Redactor | None = None,
        progress_interval: float = 0.2,
        renderer: Renderer | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fd = fd
        self.job_id = job_id
        self.redact = redactor or Redactor()
        self.progress_interval = progress_interval
        self.renderer = renderer
        self.listeners: list[Listener] = []
        self.closed = False
        self.seq = 0
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._job_json = dumps(job_id)
        self._head = f'{{"v":{SCHEMA_VERSION},"ts":"'
        self._sec = -1
        self._sec_text = ""
        self._progress: dict[str | None, _ProgressState] = {}
        self._flusher: threading.Thread | None = None
        self._flusher_lock = threading.Lock()
        self._wake = threading.Event()
        self._broken = False
        self._owner: int | None = None
        self._deferred: Callable[[], None] | None = None
        self._deferred_thread: int | None = None

    # -- the one write path -------------------------------------------------------------------

    def emit(self, type: str, fields: dict[str, Any]) -> None:
        """Write one event (``fields`` from a constructor of events/shapes.py).  Thread-safe; after
        ``close`` (the ``end`` event) it drops silently."""
        body = dumps(fields) if fields else "{}"
        with self._lock:
            if self.closed:
                return
            self._owner = threading.get_ident()
            try:
                self._write_locked(type, body, fields)
            finally:
                self._owner = None
        if self._deferred is not None:
            self._run_deferred()

    def _write_locked(self, type: str, body: str, fields: dict[str, Any]) -> None:
        t = self._clock()
        sec = int(t)
        if sec != self._sec:
            self._sec = sec
            self._sec_text = shapes.seconds_text(sec)
        ts = f"{self._sec_text}.{shapes.millis(t, sec):03d}Z"
        seq = self.seq
        self.seq = seq + 1
        if body == "{}":
            line = f'{self._head}{ts}","seq":{seq},"type":"{type}","job_id":{self._job_json}}}\n'
        else:
            line = f'{self._head}{ts}","seq":{seq},"type":"{type}","job_id":{self._job_json},{body[1:]}\n'
        if self.redact.active:
            line = self.redact.json(line)  # inside string tokens only: the line stays valid JSON
        if self.listeners or self.renderer is not None:
            import json

            event = json.loads(line)
            for listener in self.listeners:
                try:
                    listener(event)
                except Exception:  # a listener (e.g. the backend) must never break the stream
                    pass
            if self.renderer is not None:
                text = self.renderer(event)
                if text is None:
                    return
                line = text if text.endswith("\n") else text + "\n"
        self._write(line.encode("utf-8", "replace"))

    def _write(self, data: bytes) -> None:
        if self._broken:
            return
        view = memoryview(data)
        try:
            while view:
                n = os.write(self.fd, view)
                view = view[n:]
        except (BrokenPipeError, OSError):
            # The reader went away (e.g. `| head`): keep running the action, stop writing.
            self._broken = True

    # -- signals ------------------------------------------------------------------------------

    def writing_in_this_thread(self) -> bool:
        """True while this thread is inside a write: a signal handler must not raise now, or a
        ``seq`` number would be used without its line being written."""
        return self._owner == threading.get_ident()

    def defer(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` in this thread (and only this one) as soon as its current write is complete.

        Only this thread: the deferred function is a cancellation meant for the action's main thread.
        Run by a capture reader thread, it would kill that thread, which then stops draining the
        plugin's pipe: the plugin blocks and the main thread never sees the cancel.
        """
        self._deferred_thread = threading.get_ident()
        self._deferred = fn

    def _run_deferred(self) -> None:
        me = threading.get_ident()
        if self._deferred_thread != me or self._owner == me:
            return
        fn, self._deferred, self._deferred_thread = self._deferred, None, None
        if fn is not None:
            fn()

    # -- progress coalescing ------------------------------------------------------------------

    def progress(self, current: float, total: float, category: str | None = None) -> None:
        """Record progress; writes the first, the last (current == total) and one per interval.

        The common call (a category already written, not the last, within the interval) only stores
        the value as pending, without the lock: one attribute store, atomic under the GIL.  The
        flusher never clears ``pending``; it writes it when it differs from what was written last,
        so a value stored while it writes is written on its next round, never lost."""
        state = self._progress.get(category)
        if state is not None and current < total and self._monotonic() - state.last_emit < self.progress_interval:
            state.pending = (current, total)
            if self._flusher is None:
                self._start_flusher()
            return
        now = self._monotonic()
        with self._lock:
            if self.closed:
                return
            state = self._progress.get(category)
            if state is None:
                state = self._progress[category] = _ProgressState()
            value = (current, total)
            state.pending = None
            if value == state.last:
                return
            if state.last is None or current >= total or now - state.last_emit >= self.progress_interval:
                self._owner = threading.get_ident()
                try:
                    self._emit_progress_locked(category, state, value, now)
                finally:
                    self._owner = None
            else:
                state.pending = value
                self._start_flusher()
        if self._deferred is not None:
            self._run_deferred()

    def _start_flusher(self) -> None:
        with self._flusher_lock:
            if self._flusher is not None:
                return
            self._flusher = threading.Thread(target=self._flush_loop, name="synapse-progress", daemon=True)
            self._flusher.start()

    def _emit_progress_locked(
        self, category: str | None, state: _ProgressState, value: tuple[float, float], now: float
    ) -> None:
        current, total = value
        state.last = value
        state.last_emit = now
        fields = shapes.progress(current, total, category)
        self._write_locked("progress", dumps(fields), fields)

    def _flush_pending_locked(self, force: bool) -> None:
        now = self._monotonic()
        for category, state in self._progress.items():
            value = state.pending
            if value is not None and value != state.last and (force or now - state.last_emit >= self.progress_interval):
                self._emit_progress_locked(category, state, value, now)

    def _flush_loop(self) -> None:
        while not self.closed:
            self._wake.wait(self.progress_interval)
            with self._lock:
                if self.closed:
                    return
                self._flush_pending_locked(force=False)

    def flush_progress(self) -> None:
        """Write every pending progress state now (before result/error/end, so nothing is lost)."""
        with self._lock:
            if not self.closed:
                self._flush_pending_locked(force=True)

    # -- end ----------------------------------------------------------------------------------

    def close(self, type: str | None = None, fields: dict[str, Any] | None = None) -> None:
        """Flush pending progress, optionally write a last event (``end``), and stop writing."""
        with self._lock:
            if self.closed:
                return
            self._flush_pending_locked(force=True)
            if type is not None:
                body = dumps(fields) if fields else "{}"
                self._write_locked(type, body, fields or {})
            self.closed = True
        self._wake.set()


__all__ = ["EventWriter", "SCHEMA_VERSION"]
