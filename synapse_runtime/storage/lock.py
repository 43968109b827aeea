"""Cross-process locks on lock files (fcntl.flock), with a bounded wait and a heartbeat.

flock locks die with their process, so a crashed downloader never leaves a stuck lock: the next
process simply gets it and finds (and removes) the dead one's temp files.  Locks are per open
file description, so two threads of one process exclude each other as well.

On a shared (ReadWriteMany) cache a lock can outlive its owner: an NFSv3 lock held by a node that
was lost stays until that node comes back.  So a producer's lock is *heartbeated* (its holder
touches the lock file every few seconds while it works) and a waiter gives up with a
``StorageError`` (exit 4) once the holder has shown no sign of life for ``stall_timeout`` seconds
(``SYNAPSE_CACHE_LOCK_TIMEOUT``).  A live holder is waited for however long its download takes.
A filesystem that refuses locks (ENOLCK: NFSv3 without lockd) is reported as such, not as a crash.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
import time
from pathlib import Path

from ..errors import StorageError

#: errno values meaning "this filesystem cannot lock", not "someone else holds it"
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS}
#: SYNAPSE_CACHE_LOCK_TIMEOUT's default (config.py reads the knob)
DEFAULT_STALL_TIMEOUT = 300.0


def heartbeat_interval(stall_timeout: float) -> float:
    """How often a holder touches its lock file: several beats fit in a waiter's timeout."""
    return min(10.0, max(0.2, stall_timeout / 6))


class _Heartbeat:
    """One daemon thread per process touching the lock files of the exclusive locks it holds."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.fds: dict[int, float] = {}  # fd -> interval
        self.thread: threading.Thread | None = None
        self.wake = threading.Event()

    def add(self, fd: int, interval: float) -> None:
        with self.lock:
            self.fds[fd] = interval
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="synapse-lock-heartbeat", daemon=True)
                self.thread.start()
        self.wake.set()

    def remove(self, fd: int) -> None:
        with self.lock:  # after this returns the thread never touches fd (it may be closed and reused)
            self.fds.pop(fd, None)

    def _run(self) -> None:
        while True:
            with self.lock:
                if not self.fds:
                    self.thread = None
                    return
                for fd in list(self.fds):
                    try:
                        os.utime(fd)
                    except OSError:
                        pass
                interval = min(self.fds.values())
            self.wake.wait(interval)
            self.wake.clear()

    def after_fork(self) -> None:
        self.lock = threading.Lock()
        self.fds.clear()
        self.thread = None


_HEARTBEAT = _Heartbeat()
os.register_at_fork(after_in_child=_HEARTBEAT.after_fork)


def _unsupported(path: Path, exc: OSError) -> StorageError:
    name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
    return StorageError(
        f"cannot lock {path}: the cache filesystem refuses file locks ({name}; e.g. NFSv3 mounted without "
        "lockd/rpc.statd)",
        hint="mount the cache volume with working locks (NFSv4, or NFSv3 with lockd), or put SYNAPSE_CACHE_DIR on "
             "node-local storage (emptyDir, hostPath); see docs/storage.md, Cache placement",
        details={"cause": "locks unsupported", "path": str(path), "errno": name, "knob": "SYNAPSE_CACHE_DIR"})


def _mtime(path: Path) -> int | None:
    """The lock file's mtime, read through a fresh open (NFS revalidates attributes on open)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.fstat(fd).st_mtime_ns
    finally:
        os.close(fd)


class FileLock:
    """An exclusive or shared flock on ``path``; use as a context manager or hold it (pins).

    ``stall_timeout`` (seconds; None or 0: wait forever) bounds a plain blocking ``acquire()``: it
    raises StorageError once the lock file has not been touched for that long.  ``heartbeat`` makes
    this process touch the file while it holds the lock, so its waiters know it is alive.
    """

    def __init__(self, path: Path, shared: bool = False, *, stall_timeout: float | None = None,
                 heartbeat: bool = False) -> None:
        self.path = path
        self.shared = shared
        self.stall_timeout = stall_timeout or None
        self.heartbeat = heartbeat and not shared
        self.fd: int | None = None

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take the lock; returns False when non-blocking (or timed out) and someone else holds it.

        A blocking call without ``timeout`` waits while the holder shows signs of life, and raises
        StorageError after ``stall_timeout`` seconds without any.
        """
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        mode = fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX
        stall = self.stall_timeout if blocking and timeout is None else None
        deadline = None if timeout is None else time.monotonic() + timeout
        seen, alive_at = _mtime(self.path), time.monotonic()
        poll = 0.05 if stall is None else min(0.5, max(0.02, stall / 20))
        try:
            while True:
                try:
                    if blocking and deadline is None and stall is None:
                        fcntl.flock(fd, mode)
                    else:
                        fcntl.flock(fd, mode | fcntl.LOCK_NB)
                    self.fd = fd
                    if self.heartbeat:  # even with no timeout of its own: its waiters may have one
                        os.utime(fd)
                        _HEARTBEAT.add(fd, heartbeat_interval(self.stall_timeout or DEFAULT_STALL_TIMEOUT))
                    return True
                except OSError as exc:
                    if exc.errno in _NO_LOCKS:
                        raise _unsupported(self.path, exc) from None
                    if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                        raise
                now = time.monotonic()
                if not blocking or (deadline is not None and now >= deadline):
                    os.close(fd)
                    return False
                if stall is not None:
                    current = _mtime(self.path)
                    if current != seen:
                        seen, alive_at = current, now  # the holder touched it: alive, keep waiting
                    elif now - alive_at >= stall:
                        raise self._timed_out(stall)
                time.sleep(poll)
        except BaseException:
            if self.fd is None:
                os.close(fd)
            raise

    def _timed_out(self, stall: float) -> StorageError:
        return StorageError(
            f"gave up waiting for the cache lock {self.path}: its holder (another process or node, "
            f"possibly lost) showed no sign of life for {stall:g} s (SYNAPSE_CACHE_LOCK_TIMEOUT)",
            hint="retry the job; if the holder is only slow, raise SYNAPSE_CACHE_LOCK_TIMEOUT (seconds, "
                 "0 waits forever); a lock held by a lost NFSv3 client stays until that node is back",
            details={"cause": "lock timeout", "path": str(self.path), "seconds": stall,
                     "knob": "SYNAPSE_CACHE_LOCK_TIMEOUT"})

    def release(self) -> None:
        if self.fd is not None:
            _HEARTBEAT.remove(self.fd)
            try:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            finally:
                os.close(self.fd)
                self.fd = None

    def __enter__(self) -> "FileLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
