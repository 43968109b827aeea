"""The one owner of process signals: the only module that installs SIGTERM/SIGINT handlers, and the
only one that keeps signal state.

Why one owner: a signal's meaning changes over a process's life (held while the runtime imports,
``Cancelled`` at a safe point during a run, held again while a step rollback runs, a drain in the
server), and when several modules each installed handlers and kept flags, each one had to read the
others' globals to know which phase it was in.  The others call this small API:

* ``hold_early()``: the console entry, first thing: a signal before any handler of a run or the
  server is installed is remembered, not fatal (``held()`` says which came);
* ``release_early()``: a command that neither runs nor serves puts the defaults back;
* ``install(handler)`` / ``restore(previous)``: a run's canceller (cancellation.py) while it runs;
* ``on_loop(loop, callback)``: the server's drain, as asyncio loop handlers;
* ``rollback_guard()`` / ``defer_cancellation(signum)``: a step rollback runs to its end, a signal
  during it is raised as ``Cancelled`` after it;
* ``abandon_threads()`` / ``threads_abandoned()``: an upload cut off by its timeout (often after a
  SIGTERM) leaves threads behind, so the process must end with ``os._exit``.

Imports nothing heavy: the console entry calls it before anything else is imported.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import Cancelled

#: The signals the runtime handles: a pod's deletion (SIGTERM) and Ctrl-C (SIGINT).
HANDLED = (signal.SIGTERM, signal.SIGINT)

_early: list[int] = []
_rollback_depth = 0
_rollback_signal: int | None = None
_abandoned = threading.Event()


# -- before a run or the server owns the signals -----------------------------------------------------

def _hold(signum: int, frame: object) -> None:
    _early.append(signum)


def hold_early() -> list[int]:
    """Remember SIGTERM/SIGINT from now until a run or the server installs its handlers, so a pod
    deleted while the runtime imports still ends with the contract's events and exit code.  Returns
    the (live) list of the signals held."""
    _early.clear()
    for sig in HANDLED:
        signal.signal(sig, _hold)
    return _early


def held() -> list[int]:
    """The signals ``hold_early`` has held so far (in order)."""
    return list(_early)


def release_early() -> None:
    """Put the defaults back (SIGTERM kills, SIGINT raises KeyboardInterrupt): for commands that
    neither run an action nor serve."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)


# -- a run's handler ---------------------------------------------------------------------------------

def install(handler: Callable[[int, Any], None]) -> dict[int, Any]:
    """Make ``handler`` the SIGTERM/SIGINT handler (main thread only: elsewhere nothing is installed,
    and ``{}`` returned); returns the previous handlers for ``restore``."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, handler) for sig in HANDLED}


def restore(previous: dict[int, Any]) -> None:
    """Put back the handlers ``install`` replaced."""
    for sig, handler in previous.items():
        signal.signal(sig, handler)


# -- the server's drain ------------------------------------------------------------------------------

def on_loop(loop: Any, callback: Callable[..., None], *args: Any) -> None:
    """Call ``callback(signum, *args)`` in ``loop`` on SIGTERM/SIGINT (the server's drain)."""
    for sig in HANDLED:
        loop.add_signal_handler(sig, callback, sig, *args)


# -- step rollbacks ----------------------------------------------------------------------------------

def defer_cancellation(signum: int) -> bool:
    """For a run's handler: True (and the signal held) when a step rollback is running, which then
    ends and raises ``Cancelled`` itself."""
    global _rollback_signal
    if _rollback_depth == 0:
        return False
    if _rollback_signal is None:
        _rollback_signal = signum
    return True


@contextmanager
def rollback_guard() -> Iterator[None]:
    """Around a step rollback: a signal during it is raised as ``Cancelled`` once it is done, instead
    of interrupting it half-way."""
    global _rollback_depth, _rollback_signal
    _rollback_depth += 1
    try:
        yield
    finally:
        _rollback_depth -= 1
        if _rollback_depth == 0 and _rollback_signal is not None:
            signum, _rollback_signal = _rollback_signal, None
            raise Cancelled(signum)


# -- how the process ends ----------------------------------------------------------------------------

def abandon_threads() -> None:
    """Threads were left running past their timeout (an output upload): the process ends with
    ``os._exit``, since they would hold the interpreter's exit."""
    _abandoned.set()


def threads_abandoned() -> bool:
    """True once ``abandon_threads`` was called."""
    return _abandoned.is_set()


__all__ = [
    "HANDLED", "abandon_threads", "defer_cancellation", "held", "hold_early", "install", "on_loop",
    "release_early", "restore", "rollback_guard", "threads_abandoned",
]
