"""Processes a plugin started and left behind, terminated when the run ends.

In a container the PID namespace dies with the entrypoint, but the same runtime also runs without
one (``synapse-runtime run`` on a workstation, a shell wrapper, a sidecar): there a subprocess of a
cancelled action would outlive the run and keep a GPU, a port or a file busy. The CLI makes the
runtime a child subreaper, so even grandchildren whose parent exited stay below it, and at the end
of the run every descendant gets SIGTERM, then SIGKILL after a short grace.

Linux only (``/proc`` and ``prctl``); elsewhere these functions do nothing.
"""

from __future__ import annotations

import os
import signal
import time

_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Adopt orphaned descendants (instead of PID 1), so they can be found and stopped at the end."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _parents() -> dict[int, int]:
    parents: dict[int, int] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return parents
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # exited meanwhile
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1 and fields[0] != b"Z":
            parents[int(entry)] = int(fields[1])
    return parents


def descendants(pid: int | None = None) -> list[int]:
    """Live (non-zombie) descendants of ``pid`` (default: this process), parents before children."""
    root = os.getpid() if pid is None else pid
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found: list[int] = []
    todo = list(children.get(root, ()))
    while todo:
        p = todo.pop(0)
        found.append(p)
        todo.extend(children.get(p, ()))
    return found


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def terminate_descendants(grace: float = 2.0) -> list[int]:
    """SIGTERM every descendant, SIGKILL what is left after ``grace`` seconds; returns the pids found."""
    found = descendants()
    if not found:
        return []
    for pid in found:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + grace
    left = found
    while left and time.monotonic() < deadline:
        time.sleep(0.02)
        _reap()
        alive = set(descendants())
        left = [p for p in left if p in alive]
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    time.sleep(0.01)
    _reap()
    return found
