"""Where downloaded bytes land: the cache file, written around the page cache where the disk allows.

Copying 1 GiB into fresh page-cache pages and writing it back costs about 1 s of CPU on the 2-core
bench machine, most of a verified download's CPU and why one large object trailed s5cmd. With
``O_DIRECT`` the same bytes go from the worker's buffer to the disk for ~0.2 s, and the final fsync
finds almost nothing left (docs/storage.md, *Transfer*).  It also keeps a large checkpoint from
filling the container's memory cgroup with dirty page cache.  Direct writes need block-aligned
offsets, lengths and memory: the engine's buffers are page-aligned mmaps and its chunks block
multiples, so only an object's tail (or a chunk cut short by a broken connection) goes through the
page cache.  A filesystem that refuses ``O_DIRECT`` (tmpfs, some FUSE mounts) gets buffered writes:
the open or first write fails with EINVAL and direct writes stay off for that file.

Buffered writes are flushed in a side thread every ``writeback`` bytes (``fdatasync``), so the
final fsync is short there too.
"""

from __future__ import annotations

import errno
import mmap
import os
import threading
import time

from .retry import DiskError

ALIGN = 4096  # the largest logical block size in use; a multiple of 512 too


def buffer(size: int) -> memoryview:
    """A page-aligned receive buffer (anonymous mmap): what O_DIRECT needs of the memory."""
    return memoryview(mmap.mmap(-1, size))


class Sink:
    """Positional writes into one open file, direct where possible; owns the flush side thread."""

    def __init__(self, fd: int, direct: bool, writeback: int) -> None:
        self.fd = fd
        self.writeback = writeback
        self.direct_fd = _open_direct(fd) if direct else None
        self.flushing = threading.Event()
        self.flushed = 0
        self.buffered = 0  # bytes that went through the page cache (reported by tests and the bench)

    @property
    def direct(self) -> bool:
        return self.direct_fd is not None

    def write(self, data: bytes | memoryview, pos: int, aligned: bool) -> None:
        """Write all of ``data`` at ``pos``; ``aligned``: ``data`` starts a page-aligned buffer."""
        view = memoryview(data)
        if self.direct_fd is not None and aligned and not (pos | len(view)) % ALIGN:
            try:
                _pwrite_all(self.direct_fd, view, pos)
                return
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise DiskError(f"cannot write to the cache: {exc.strerror}") from exc
                self._close_direct()  # this filesystem takes no direct writes: buffered from now on
        try:
            _pwrite_all(self.fd, view, pos)
        except OSError as exc:
            raise DiskError(f"cannot write to the cache: {exc.strerror}") from exc
        self.buffered += len(view)

    def progress(self, upto: int) -> None:
        """Bytes up to ``upto`` are written: start a background flush when enough went buffered.

        Durability costs real time (fsync of 256 MiB written at once: 0.35-0.45 s, as long as the
        transfer); flushing what is already written while bytes keep arriving leaves the final fsync
        with only the tail.  Direct writes need none of this.
        """
        if upto - self.flushed < self.writeback or self.flushing.is_set():
            return
        self.flushed = upto
        if self.buffered == 0:
            return
        self.flushing.set()

        def run() -> None:
            try:
                os.fdatasync(self.fd)
            except OSError:
                pass  # the final fsync reports real errors
            finally:
                self.flushing.clear()

        threading.Thread(target=run, name="synapse-flush", daemon=True).start()

    def close(self) -> None:
        """Never leave with a flush running on the caller's fd; the direct descriptor is ours to close."""
        while self.flushing.is_set():
            time.sleep(0.002)
        self._close_direct()

    def _close_direct(self) -> None:
        fd, self.direct_fd = self.direct_fd, None
        if fd is not None:
            os.close(fd)


def _pwrite_all(fd: int, view: memoryview, pos: int) -> None:
    while len(view):
        n = os.pwrite(fd, view, pos)
        view = view[n:]
        pos += n


def _open_direct(fd: int) -> int | None:
    """A second descriptor of the same file with O_DIRECT, or None where the OS or filesystem has none."""
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return None
    try:
        return os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | flag | os.O_CLOEXEC)
    except OSError:
        return None
