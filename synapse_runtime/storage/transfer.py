"""The download engine: ranged reads written with pwrite, verified by a hashing follower, resumable.

One engine serves S3 and plain HTTP(S): a source only has to open a byte range.  Three strategies:

* ``single``: one GET streamed in ``chunk``-sized reads.  Fastest against a local server (moto
  serves one stream at ~600 MiB/s but re-reads the whole object for every ranged GET).
* ``parallel``: the object is cut into ``part_size`` ranges fetched by ``concurrency`` workers; what
  AWS S3 needs, since one connection there is capped far below the NIC.
* ``auto`` (default): starts as ``single``; after ``split_after`` seconds of streaming, if the stream
  is slower than ``split_below`` bytes/s, the tail not yet read is cut into ranges for the workers
  while the first stream goes on up to the cut.  So fast endpoints keep one stream and slow ones
  get parallelism, without configuration.

Whatever the strategy, memory stays flat (one chunk per worker, one read-back buffer for hashing).
The calling thread follows the contiguous prefix of the file with ``pread`` and feeds the hashes
(the server's own checksum when it has one, else MD5 for the ETag; sha256 when asked), so
verification overlaps the transfer instead of adding a second pass.  A reset or stalled connection
is retried with backoff, resuming each range at the first byte not yet on disk.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import os
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from .config import Settings
from .retry import DiskError, TruncatedBody, backoff_delay, is_retryable


class Body(Protocol):
    def read(self, n: int) -> bytes: ...

    def close(self) -> None: ...


#: opens the byte range [start, end) of the object; raises on failure (classified by retry.py)
Opener = Callable[[int, int], Body]


@dataclass
class ObjectInfo:
    """What a HEAD (or the first GET) tells about an object; the cache key is built from it."""

    size: int
    etag: str | None = None  # without quotes
    version_id: str | None = None
    last_modified: str | None = None
    md5_etag: bool = False  # the ETag is a content MD5 (single part) or an MD5 of part MD5s
    part_size: int | None = None  # multipart part size when known
    part_size_confirmed: bool = False  # known from the server, not guessed
    extra: dict[str, str] = field(default_factory=dict)
    #: S3 additional checksums (``x-amz-checksum-<algo>``, base64, "-N" when composite) by algorithm
    checksums: dict[str, str] = field(default_factory=dict)
    checksum_type: str | None = None  # FULL_OBJECT or COMPOSITE when the server says

    @property
    def parts(self) -> int | None:
        if self.etag and "-" in self.etag:
            tail = self.etag.rsplit("-", 1)[1]
            return int(tail) if tail.isdigit() else None
        return None


class ChecksumFailure(Exception):
    """Raised by ``Hasher.check``; the caller turns it into ChecksumMismatchError with context."""

    def __init__(self, what: str, expected: str, actual: str, certain: bool = True) -> None:
        super().__init__(f"{what} mismatch: expected {expected}, got {actual}")
        self.what = what
        self.expected = expected
        self.actual = actual
        self.certain = certain  # False when a guessed multipart part size may be the culprit


class _Crc:
    """A running CRC with hashlib's update/digest shape."""

    __slots__ = ("fn", "width", "value")

    def __init__(self, fn: Callable[..., int], width: int) -> None:
        self.fn = fn
        self.width = width
        self.value = 0

    def update(self, data: bytes | memoryview) -> None:
        self.value = self.fn(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(self.width, "big")


def _crt_crc(name: str, width: int) -> Callable[[], Any] | None:
    try:  # awscrt (botocore[crt]) has the CRCs the standard library lacks
        from awscrt import checksums  # type: ignore[import-not-found]
    except ImportError:
        return None
    fn = getattr(checksums, name, None)
    return (lambda: _Crc(fn, width)) if fn is not None else None


def checksum_factory(algo: str) -> Callable[[], Any] | None:
    """A digest constructor for an S3 checksum algorithm, or None when this process cannot compute it."""
    if algo == "crc32":
        return lambda: _Crc(zlib.crc32, 4)
    if algo in ("sha256", "sha1"):
        return lambda: hashlib.new(algo)
    if algo == "crc32c":
        return _crt_crc("crc32c", 4)
    if algo == "crc64nvme":
        return _crt_crc("crc64nvme", 8)
    return None


#: cheapest first: CRC32 runs at ~6 GB/s here, sha256 ~1.8, MD5 ~0.75 (one core, Python 3.11)
_CHECKSUM_PREFERENCE = ("crc32", "crc64nvme", "crc32c", "sha256", "sha1")


class Hasher:
    """Sequential digests of the object, compared with what the server stored, plus sha256 when asked.

    What is compared is chosen at the first bytes (a GET's headers may have taught ``info`` the
    object's checksum by then): the server's own checksum (S3 ``x-amz-checksum-*``: CRC32 costs an
    eighth of MD5's CPU, which decides the speed of verified downloads on small machines), else the
    MD5 ETag; per part for multipart objects, which needs the part size.
    """

    def __init__(self, info: ObjectInfo, want_sha256: bool, verify_etag: bool = True) -> None:
        self.info = info
        self.verify = verify_etag
        self.sha = hashlib.sha256() if want_sha256 else None
        self.method: str | None = None  # "crc32", "md5", ...; None: size only
        self.expected: str | None = None
        self.new: Callable[[], Any] | None = None
        self.cur: Any = None
        self.part_size = 0
        self.part_digests: list[bytes] = []
        self.part_fill = 0
        self.decided = False
        self.count = 0

    def _decide(self) -> None:
        """Once, at the first bytes (or at ``check`` for an empty object)."""
        if self.decided:
            return
        self.decided = True
        if not self.verify:
            return
        info = self.info
        multipart = info.parts is not None
        for algo in _CHECKSUM_PREFERENCE:
            value = info.checksums.get(algo)
            new = checksum_factory(algo) if value else None
            if value is None or new is None:
                continue
            composite = value.rpartition("-")[2].isdigit() or info.checksum_type == "COMPOSITE" or (
                multipart and info.checksum_type != "FULL_OBJECT")
            if composite and not (info.part_size and info.part_size_confirmed):
                continue  # a composite checksum needs the exact part size; the ETag path can guess
            self.method, self.expected, self.new = algo, value, new
            self.part_size = info.part_size if composite else 0
            break
        else:
            if info.md5_etag and info.etag and (not multipart or info.part_size):
                self.method, self.expected, self.new = "md5", info.etag.lower(), hashlib.md5
                self.part_size = (info.part_size or 0) if multipart else 0
        if self.new is not None:
            self.cur = self.new()

    @property
    def active(self) -> bool:
        return self.sha is not None or (self.verify and not self.decided) or self.cur is not None

    def feed(self, data: bytes | memoryview) -> None:
        self._decide()
        self.count += len(data)
        if self.sha is not None:
            self.sha.update(data)
        if self.cur is None:
            return
        if not self.part_size:
            self.cur.update(data)
            return
        view = memoryview(data)
        while len(view):
            take = min(len(view), self.part_size - self.part_fill)
            self.cur.update(view[:take])
            self.part_fill += take
            view = view[take:]
            if self.part_fill == self.part_size:
                self.part_digests.append(self.cur.digest())
                self.cur = self.new()  # type: ignore[misc]
                self.part_fill = 0

    def sha256_hex(self) -> str | None:
        return self.sha.hexdigest() if self.sha is not None else None

    @property
    def etag_verified(self) -> bool:
        """Whether ``check`` compares with a server-side digest known to be computed the same way."""
        self._decide()
        return self.cur is not None and (not self.part_size or self.info.part_size_confirmed)

    def _actual(self) -> str:
        """The digest as the server writes it: hex for ETags, base64 for S3 checksums; "-N" for N parts."""
        encode = bytes.hex if self.method == "md5" else (lambda d: base64.b64encode(d).decode())
        if not self.part_size:
            return encode(self.cur.digest())
        digests = list(self.part_digests)
        if self.part_fill or not digests:
            digests.append(self.cur.digest())
        outer = self.new()  # type: ignore[misc]  # the same algorithm over the part digests
        outer.update(b"".join(digests))
        return f"{encode(outer.digest())}-{len(digests)}"

    def check(self, expected_sha256: str | None) -> None:
        """Raise ChecksumFailure on any mismatch; the server's digest first (it says the transfer went wrong).

        A multipart ETag mismatch under a guessed part size is not conclusive (``certain=False``);
        it is raised only after the sha256 check, so that it never hides a real sha256 mismatch.
        """
        self._decide()
        uncertain: ChecksumFailure | None = None
        if self.cur is not None and self.expected is not None:
            actual = self._actual()
            expected = self.expected
            if self.part_size and self.method != "md5" and "-" not in expected:
                actual = actual.rpartition("-")[0]  # servers that omit the "-N" of a composite value
            if actual != expected:
                if self.method == "md5" and self.part_size:
                    failure = ChecksumFailure("multipart ETag", self.info.etag or expected, actual,
                                              certain=self.info.part_size_confirmed)
                    if failure.certain:
                        raise failure
                    uncertain = failure
                elif self.method == "md5":
                    raise ChecksumFailure("ETag (MD5)", self.info.etag or expected, actual)
                else:
                    raise ChecksumFailure(f"{self.method.upper()} checksum", expected, actual)  # type: ignore[union-attr]
        if expected_sha256 is not None and self.sha is not None:
            actual = self.sha.hexdigest()
            if actual != expected_sha256.lower():
                raise ChecksumFailure("sha256", expected_sha256, actual)
        if uncertain is not None:
            raise uncertain


class _Seg:
    __slots__ = ("start", "end", "done")

    def __init__(self, start: int, end: int) -> None:
        self.start = start
        self.end = end
        self.done = 0


class _Engine:
    def __init__(self, fd: int, size: int, opener: Opener, st: Settings, strategy: str,
                 on_bytes: Callable[[int], None] | None) -> None:
        self.fd = fd
        self.size = size
        self.opener = opener
        self.st = st
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
        self.flushing = threading.Event()

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
        attempt = 0
        chunk = self.st.chunk
        while not self.stop.is_set():
            with self.cond:
                pos, end = seg.start + seg.done, seg.end
            if pos >= end:
                return
            progressed = False
            try:
                body = self.opener(pos, end)
                try:
                    while not self.stop.is_set():
                        with self.cond:
                            end = seg.end  # may shrink when auto mode splits the tail off
                        pos = seg.start + seg.done
                        if pos >= end:
                            return
                        data = body.read(min(chunk, end - pos))
                        if not data:
                            raise TruncatedBody(f"connection closed at byte {pos} of {self.size}")
                        self._write(data, pos)
                        progressed = True
                        with self.cond:
                            seg.done += len(data)
                            self.transferred += len(data)
                            if self.first_byte_at is None:
                                self.first_byte_at = time.monotonic()
                            self.cond.notify_all()
                finally:
                    try:
                        body.close()
                    except Exception:  # noqa: BLE001 - closing a broken connection may fail too
                        pass
            except BaseException as exc:
                if self.stop.is_set() or not isinstance(exc, Exception) or not is_retryable(exc):
                    raise
                attempt = 1 if progressed else attempt + 1  # progress resets the budget
                if attempt > self.st.retries:
                    raise
                if self.stop.wait(backoff_delay(attempt, self.st.backoff, self.st.backoff_max)):
                    return

    def _write(self, data: bytes, pos: int) -> None:
        view = memoryview(data)
        try:
            while len(view):
                n = os.pwrite(self.fd, view, pos)
                view = view[n:]
                pos += n
        except OSError as exc:
            raise DiskError(f"cannot write to the cache: {exc.strerror}") from exc

    def _flush_async(self) -> None:
        """fdatasync in a side thread while bytes keep arriving.

        Durability costs real time here (fsync of 256 MiB written at once: 0.35-0.45 s, as long as
        the transfer); flushing what is already written in the background leaves the final fsync
        with only the tail (0.05 s in the same test).
        """
        self.flushing.set()

        def run() -> None:
            try:
                os.fdatasync(self.fd)
            except OSError:
                pass  # the final fsync reports real errors
            finally:
                self.flushing.clear()

        threading.Thread(target=run, name="synapse-flush", daemon=True).start()

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

    def _split(self) -> bool:
        """Cut the tail of the single stream into ranges (auto mode, slow stream)."""
        part = self.st.part_size
        with self.cond:
            seg = self.segs[0]
            pos = seg.start + seg.done
            cut = ((pos + self.st.chunk * 4) // part + 1) * part
            if self.size - cut < 2 * part:
                return False
            seg.end = cut
            tail = [_Seg(s, min(s + part, self.size)) for s in range(cut, self.size, part)]
            self.segs.extend(tail)
            self.pending.extend(tail)
        self._start_workers(min(self.st.concurrency - 1, len(tail)))
        return True

    def run(self, hasher: Hasher | None) -> None:
        part = self.st.part_size
        if self.strategy == "parallel" and self.size > part:
            self.segs = [_Seg(s, min(s + part, self.size)) for s in range(0, self.size, part)]
            self.pending.extend(self.segs)
            self._start_workers(min(self.st.concurrency, len(self.segs)))
        else:
            self.segs = [_Seg(0, self.size)]
            self.pending.append(self.segs[0])
            self._start_workers(1)
        may_split = self.strategy == "auto" and self.size >= 4 * part and self.st.concurrency > 1
        hashed = 0
        flushed = 0
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
                if hasher is not None and hasher.active:
                    while hashed < wm:
                        n = min(read_back, wm - hashed)
                        hasher.feed(os.pread(self.fd, n, hashed))
                        hashed += n
                else:
                    hashed = wm
                if hashed - flushed >= self.st.writeback and not self.flushing.is_set():
                    self._flush_async()
                    flushed = hashed
                if hashed >= self.size:
                    break
                if may_split and self.first_byte_at is not None:
                    elapsed = time.monotonic() - self.first_byte_at
                    if elapsed >= self.st.split_after:
                        may_split = False
                        if self.transferred / elapsed < self.st.split_below:
                            self._split()
                with self.cond:
                    if self.active_workers == 0 and self.error is None and self._watermark() < self.size:
                        raise TruncatedBody("download workers ended before the object was complete")
        except BaseException:
            self.stop.set()
            for t in self.threads:
                t.join(timeout=1.0)
            deadline = time.monotonic() + 5
            while self.flushing.is_set() and time.monotonic() < deadline:
                time.sleep(0.002)
            raise
        for t in self.threads:
            t.join()
        while self.flushing.is_set():  # never close the fd under a running fdatasync
            time.sleep(0.002)


_sync_file_range = None


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing a range to disk now (sync_file_range, no wait).

    The final fsync then finds little left to flush: on this machine fsync of 256 MiB written at
    once costs 0.35 s, nearly as long as the transfer itself.  A no-op where unavailable.
    """
    global _sync_file_range
    if _sync_file_range is None:
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            fn = libc.sync_file_range
            fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
            _sync_file_range = fn
        except (OSError, AttributeError):
            _sync_file_range = False
    if _sync_file_range:
        _sync_file_range(fd, offset, length, 2)  # SYNC_FILE_RANGE_WRITE


def download(fd: int, info: ObjectInfo, opener: Opener, st: Settings, *, strategy: str | None = None,
             hasher: Hasher | None = None, on_bytes: Callable[[int], None] | None = None) -> None:
    """Fill ``fd`` (opened read-write, empty) with the object's bytes and feed ``hasher`` in order.

    Raises the last transient error once the retry budget of a range is spent, any other error at
    once, and DiskError when the local write fails.  The caller verifies (``hasher.check``),
    fsyncs and renames; this function never leaves anything but bytes in its own temp file.
    """
    if info.size <= 0:
        return
    try:
        os.posix_fallocate(fd, 0, info.size)  # fail early on a full disk, less fragmentation
    except OSError as exc:
        if exc.errno not in (95, 22):  # EOPNOTSUPP, EINVAL: filesystem without fallocate
            raise DiskError(f"cannot reserve {info.size} bytes in the cache: {exc.strerror}") from exc
    _Engine(fd, info.size, opener, st, strategy or st.strategy, on_bytes).run(hasher)
