"""SIGTERM and SIGINT become ``Cancelled``, raised in the action's main thread at a safe point.

Kept apart from the runner because the safe point is subtle: during a step rollback the signal is
held until the rollback ends (signals.defer_cancellation); during an event write it is deferred until
the line is out, and then raised only by the thread that was writing (the main thread: signal
handlers run there), never by a capture thread, which would die and stop draining the plugin's pipe
(EventWriter.defer); while the run is finalizing (error, result.json, end) further signals are
recorded and ignored so the final writes complete.  Installing the handler, and the rollback's
state, belong to signals.py (the one owner of process signals); this module decides what a signal
means to a run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import Cancelled
from . import signals
from ..events import EventWriter


class SignalCanceller:
    """The handler for SIGTERM/SIGINT of one run; ``state`` is the run's (``finalizing``,
    ``cancelled_by``, ``extra_signals``), ``writer`` returns the run's event writer, if any yet."""

    def __init__(self, state: Any, writer: Callable[[], EventWriter | None]) -> None:
        self.state = state
        self.writer = writer

    def __call__(self, signum: int, frame: Any) -> None:
        st = self.state
        if st.finalizing or st.cancelled_by is not None:
            st.extra_signals.append(signum)  # rollback or final writes in progress: let them finish
            return
        st.cancelled_by = signum
        if signals.defer_cancellation(signum):
            return  # a step rollback is running: it finishes, then raises Cancelled
        writer = self.writer()
        if writer is not None and writer.writing_in_this_thread():
            # Mid-write: raise right after the line is out, so the stream stays whole.
            writer.defer(lambda: self._raise(signum))
            return
        raise Cancelled(signum)

    def _raise(self, signum: int) -> None:
        if not self.state.finalizing:
            raise Cancelled(signum)

    def install(self) -> dict[int, Any]:
        """Become the SIGTERM/SIGINT handler (main thread only); returns the previous handlers."""
        return signals.install(self)

    @staticmethod
    def restore(previous: dict[int, Any]) -> None:
        """Put back the handlers ``install`` replaced."""
        signals.restore(previous)


__all__ = ["SignalCanceller"]
