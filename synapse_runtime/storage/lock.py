"""Cross-process locks on lock files (fcntl.flock).

flock locks die with their process, so a crashed downloader never leaves a stuck lock: the next
process simply gets it and finds (and removes) the dead one's temp files.  Locks are per open
file description, so two threads of one process exclude each other as well.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path


class FileLock:
    """An exclusive or shared flock on ``path``; use as a context manager or hold it (pins)."""

    def __init__(self, path: Path, shared: bool = False) -> None:
        self.path = path
        self.shared = shared
        self.fd: int | None = None

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take the lock; returns False when non-blocking (or timed out) and someone else holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        mode = fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                try:
                    if blocking and deadline is None:
                        fcntl.flock(fd, mode)
                    else:
                        fcntl.flock(fd, mode | fcntl.LOCK_NB)
                    self.fd = fd
                    return True
                except OSError as exc:
                    if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                        raise
                    if not blocking or (deadline is not None and time.monotonic() >= deadline):
                        os.close(fd)
                        return False
                    time.sleep(0.05)
        except BaseException:
            if self.fd is None:
                os.close(fd)
            raise

    def release(self) -> None:
        if self.fd is not None:
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
