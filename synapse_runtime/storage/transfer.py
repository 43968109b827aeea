"""The download engine: ranged reads written at their offsets, verified as they land, resumable.

One engine serves S3 and plain HTTP(S): a source only has to open a byte range.  Three strategies:

* ``single``: one GET streamed in ``chunk``-sized reads, in the calling thread.
* ``parallel``: the object cut into ``part_size`` ranges fetched by ``concurrency`` workers; what
  AWS S3 and real servers reward, since one connection is capped far below the NIC.
* ``auto`` (default): ``parallel`` for large objects served through the S3 API (ranged GETs are
  part of its protocol).  Elsewhere (a presigned URL, any HTTP server) it starts as one stream and
  soon probes one range beside it; if the range's first byte comes about as fast as the stream's
  did, the tail is cut into ranges for the workers (docs/storage.md).  No server is recognised by
  name: what the probe measures decides, and an S3 server that serves ranges badly is set to
  ``single`` by its operator (SYNAPSE_S3_STRATEGY).

Memory stays flat: one page-aligned buffer per worker, received into (``readinto``), hashed and
written from while still in the CPU's cache, directly to the disk where it allows (``sink.py``).
A CRC32 to compare is computed per range by the workers and combined (``pieces.py``); other
digests (MD5 ETag, sha256) need the bytes in order, so the calling thread follows the file's
contiguous prefix with ``pread`` and feeds them (``verify.py``).  A reset or stalled connection is
retried with backoff, resuming each range at the first byte not yet on disk.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from typing import Callable, Protocol

from .config import StorageSettings
from .disk import reserve
from .pieces import Pieces, PieceStream
from .retry import TruncatedBody, backoff_delay, is_retryable
from .sink import Sink, buffer
from .verify import ChecksumFailure, Hasher, ObjectInfo, checksum_factory  # noqa: F401 - re-exported


class Body(Protocol):
    def read(self, n: int) -> bytes: ...

    def close(self) -> None: ...


#: opens the byte range [start, end) of the object; raises on failure (classified by retry.py)
Opener = Callable[[int, int], Body]


class DownloadCancelled(Exception):
    """The download was stopped from outside (``cancel``) or after another range failed."""


class _Seg:
    __slots__ = ("start", "end", "done", "first_at")

    def __init__(self, start: int, end: int) -> None:
        self.start = start
        self.end = end
        self.done = 0
        self.first_at: float | None = None  # when its first bytes arrived (auto's probe is judged by it)


class _Engine:
    def __init__(self, sink: Sink, fd: int, size: int, opener: Opener, settings: StorageSettings, strategy: str,
                 on_bytes: Callable[[int], None] | None) -> None:
        self.sink = sink
        self.fd = fd
        self.size = size
        self.opener = opener
        self.settings = settings
        self.strategy = strategy
        self.on_bytes = on_bytes
        self.cond = threading.Condition()
        self.segs: list[_Seg] = []
        self.pending: collections.deque[_Seg] = collections.deque()
        self.error: BaseException | None = None
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.active_workers = 0
        self.transferred = 0
        self.first_byte_at: float | None = None
        self.inline: Hasher | None = None  # single stream in the calling thread: hash from memory
        self.started = time.monotonic()
        self.bodies: set[Body] = set()  # open responses, aborted when the download stops
        self.cancel: threading.Event | None = None  # set from outside (a prefix fetch giving up)
        self.pieces: Pieces | None = None  # workers hash what they download (a CRC32 to compare)

    # ---- workers -------------------------------------------------------------------------
    def _worker(self) -> None:
        try:
            while not self.stop.is_set():
                with self.cond:
                    if not self.pending:
                        return
                    seg = self.pending.popleft()
                self._run_segment(seg)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            with self.cond:
                if self.error is None:
                    self.error = exc
                self.stop.set()
                self.cond.notify_all()
        finally:
            with self.cond:
                self.active_workers -= 1
                self.cond.notify_all()

    def _run_segment(self, seg: _Seg) -> None:
        """Fetch ``seg`` into the file, resuming after transient errors; hash it as it lands (pieces).

        Bytes are received into one buffer per worker (``readinto``) that is written and hashed
        while it is still in the CPU's cache: no allocation per chunk, no read-back to verify.
        """
        piece = self.pieces.stream(seg.start + seg.done) if self.pieces is not None else None
        try:
            self._fetch_segment(seg, piece)
        finally:
            if piece is not None:
                piece.close()

    def _fetch_segment(self, seg: _Seg, piece: "PieceStream | None") -> None:
        attempt = 0
        chunk = self.settings.chunk
        view = buffer(chunk)
        while not self.stop.is_set():
            with self.cond:
                pos, end = seg.start + seg.done, seg.end
            if pos >= end:
                return
            progressed = False
            try:
                body = self.opener(pos, end)
                readinto = getattr(body, "readinto", None)
                with self.cond:
                    self.bodies.add(body)
                try:
                    while not self.stop.is_set():
                        if self.cancel is not None and self.cancel.is_set():
                            raise DownloadCancelled("the download was cancelled")
                        with self.cond:
                            end = seg.end  # may shrink when auto mode splits the tail off
                        pos = seg.start + seg.done
                        if pos >= end:
                            return
                        want = min(chunk, end - pos)
                        if readinto is not None:
                            data = view[:readinto(view[:want])]
                        else:
                            data = body.read(want)
                        if not data:
                            raise TruncatedBody(f"connection closed at byte {pos} of {self.size}")
                        if self.stop.is_set() and not self.inline_mode:
                            raise DownloadCancelled("stopped")  # never write once the caller may close the file
                        self.sink.write(data, pos, readinto is not None)
                        if piece is not None:
                            piece.feed(data)
                        progressed = True
                        if self.inline_mode:
                            self._after_inline(data, pos)
                            seg.done += len(data)
                            continue
                        with self.cond:
                            seg.done += len(data)
                            self.transferred += len(data)
                            if seg.first_at is None:
                                seg.first_at = time.monotonic()
                            if self.first_byte_at is None:
                                self.first_byte_at = seg.first_at
                            self.cond.notify_all()
                finally:
                    with self.cond:
                        self.bodies.discard(body)
                    try:
                        body.close()
                    except Exception:  # noqa: BLE001 - closing a broken connection may fail too
                        pass
            except BaseException as exc:
                if self.stop.is_set() or not isinstance(exc, Exception) or not is_retryable(exc):
                    raise
                attempt = 1 if progressed else attempt + 1  # progress resets the budget
                if attempt > self.settings.retries:
                    raise
                if self.stop.wait(backoff_delay(attempt, self.settings.backoff, self.settings.backoff_max)):
                    return

    inline_mode = False

    def run_inline(self, hasher: Hasher | None) -> None:
        """One stream read, written and hashed in the calling thread: no thread hand-off, no read-back.

        For ``single`` (each object of a prefix): on a 2-core machine the hand-off to a worker and the
        ``pread`` to hash cost more CPU than the stream itself for objects of a few MiB.
        """
        self.inline_mode = True
        self.inline = hasher if hasher is not None and hasher.active else None
        self._run_segment(_Seg(0, self.size))

    def _after_inline(self, data: bytes, pos: int) -> None:
        if self.inline is not None:
            self.inline.feed(data)
        if self.on_bytes is not None:
            self.on_bytes(len(data))
        self.sink.progress(pos + len(data))

    def _abort_bodies(self) -> None:
        """Wake workers blocked in ``body.read`` (socket shutdown), so they can be joined at once."""
        with self.cond:
            bodies = list(self.bodies)
        for body in bodies:
            abort = getattr(body, "abort", None)
            if abort is not None:
                try:
                    abort()
                except Exception:  # noqa: BLE001 - best effort: the read timeout bounds the join anyway
                    pass

    def _start_workers(self, n: int) -> None:
        for _ in range(n):
            t = threading.Thread(target=self._worker, name="synapse-fetch", daemon=True)
            with self.cond:
                self.active_workers += 1
            self.threads.append(t)
            t.start()

    # ---- main thread ---------------------------------------------------------------------
    def _watermark(self) -> int:
        w = 0
        for s in self.segs:
            if s.start != w:
                break
            w = s.start + s.done
            if s.start + s.done < s.end:
                break
        return w

    def _probe(self) -> bool:
        """Fetch the object's last part as a range beside the stream (which now stops before it)."""
        part = self.settings.part_size
        with self.cond:
            seg = self.segs[0]
            start = ((self.size - 1) // part) * part
            if start - (seg.start + seg.done) < 3 * part:
                return False
            seg.end = start
            probe = _Seg(start, self.size)
            self.segs.append(probe)
            self.pending.append(probe)
        self._start_workers(1)
        return True

    def _split(self, workers: int) -> bool:
        """Cut the stream's not-yet-read rest into ranges for ``workers`` more workers (auto mode)."""
        part = self.settings.part_size
        with self.cond:
            seg = self.segs[0]
            pos = seg.start + seg.done
            cut = ((pos + self.settings.chunk * 4) // part + 1) * part
            limit = seg.end
            if limit - cut < 2 * part:
                return False
            seg.end = cut
            tail = [_Seg(s, min(s + part, limit)) for s in range(cut, limit, part)]
            self.segs[1:1] = tail  # kept in offset order (the watermark walks them)
            self.pending.extend(tail)
        self._start_workers(min(workers, len(tail)))
        return True

    def _auto_step(self, probe: dict[str, float]) -> bool:
        """``auto``: one stream, then a probe range, then every worker if the probe answered promptly.

        After ``split_after`` s of streaming slower than ``split_below``, the object's last part is
        requested as a range beside the stream.  A server where ranges are cheap sends its first
        bytes about as fast as it did for the whole GET: then the rest of the stream is cut into
        ranges for every worker.  One that is slow to answer a range (a server that reads the whole
        object before it answers) leaves the stream alone: one range spent on finding out.  Judged
        by time to first byte, not by throughput, which writeback and a busy CPU swing by more than
        ranges gain.
        """
        now = time.monotonic()
        elapsed = now - (self.first_byte_at or now)
        if not probe:
            if elapsed < max(self.settings.split_after, 0.05):  # a rate over a few ms says nothing
                return True
            rate = self.transferred / max(elapsed, 1e-6)
            if rate >= self.settings.split_below or not self._probe():
                return False
            ttfb = (self.first_byte_at or now) - self.started
            probe.update(at=now, limit=max(4 * ttfb, 0.05, self.settings.split_after))
            return True
        seg = self.segs[-1]
        if seg.first_at is not None and seg.first_at - probe["at"] <= probe["limit"]:
            self._split(self.settings.concurrency - 2)
            return False
        return now - probe["at"] <= probe["limit"]  # still waiting for the probe's first bytes

    def run(self, hasher: Hasher | None) -> None:
        self.started = time.monotonic()  # before the first request: auto compares times to first byte
        part = self.settings.part_size
        if self.strategy == "parallel" and self.size > part:
            self.segs = [_Seg(s, min(s + part, self.size)) for s in range(0, self.size, part)]
            self.pending.extend(self.segs)
            self._start_workers(min(self.settings.concurrency, len(self.segs)))
        else:
            self.segs = [_Seg(0, self.size)]
            self.pending.append(self.segs[0])
            self._start_workers(1)
        may_split = self.strategy == "auto" and self.size >= 4 * part and self.settings.concurrency > 1
        probe: dict[str, float] = {}
        hashed = 0
        reported = 0
        read_back = 4 * 1024 * 1024
        try:
            while True:
                with self.cond:
                    while True:
                        if self.error is not None:
                            raise self.error
                        wm = self._watermark()
                        done = self.transferred
                        if wm > hashed or done != reported or self.active_workers == 0:
                            break
                        self.cond.wait(0.25)
                        if may_split:
                            break
                if done != reported and self.on_bytes is not None:
                    self.on_bytes(done - reported)
                reported = done
                if hasher is not None and hasher.active and self.pieces is None:
                    while hashed < wm:
                        n = min(read_back, wm - hashed)
                        hasher.feed(os.pread(self.fd, n, hashed))
                        hashed += n
                else:
                    hashed = wm
                self.sink.progress(hashed)
                if hashed >= self.size:
                    break
                if may_split and self.first_byte_at is not None:
                    may_split = self._auto_step(probe)
                with self.cond:
                    if self.active_workers == 0 and self.error is None and self._watermark() < self.size:
                        raise TruncatedBody("download workers ended before the object was complete")
        except BaseException:
            # Stop, wake and join every worker before returning: the caller closes the file next, and
            # a worker still in body.read must never pwrite into a descriptor number reused by then.
            self.stop.set()
            self._abort_bodies()
            for t in self.threads:
                t.join()  # bounded by the read timeout for sources without abort()
            raise
        for t in self.threads:
            t.join()


def download(fd: int, info: ObjectInfo, opener: Opener, settings: StorageSettings, *, strategy: str | None = None,
             hasher: Hasher | None = None, on_bytes: Callable[[int], None] | None = None,
             cancel: threading.Event | None = None) -> None:
    """Fill ``fd`` (opened read-write, empty) with the object's bytes and feed ``hasher`` in order.

    Raises the last transient error once the retry budget of a range is spent, any other error at
    once, and DiskError when the local write fails.  The caller verifies (``hasher.check``),
    fsyncs and renames; this function never leaves anything but bytes in its own temp file.
    """
    if info.size <= 0:
        return
    reserve(fd, info.size)
    strategy = strategy or settings.strategy
    inline = strategy == "single" or (strategy == "auto" and info.size < 4 * settings.part_size)
    if strategy == "auto" and info.s3_api:
        strategy = "parallel"  # ranges are S3's own protocol: probing first only costs time (docs/storage.md)
    if hasher is not None and hasher.active and not inline:
        pieces = hasher.parallel(info.size)  # None: the engine's follower reads the file back in order
    else:
        pieces = None
    # Direct writes only where nothing reads the file back during the download (it would read the disk)
    direct = settings.direct_io and (inline or pieces is not None or hasher is None or not hasher.active)
    sink = Sink(fd, direct, settings.writeback)
    engine = _Engine(sink, fd, info.size, opener, settings, strategy, on_bytes)
    engine.cancel = cancel
    engine.pieces = pieces
    try:
        if inline:
            engine.run_inline(hasher)  # one stream either way: no worker thread
        else:
            engine.run(hasher)
    finally:
        sink.close()  # after every worker is joined: no write and no flush outlives this call
