"""Verification of downloaded bytes: what the server stored about an object, and the digests to compare.

Split from the download engine (transfer.py), which only moves bytes: ``ObjectInfo`` is what a HEAD
(or the first GET) says; ``Hasher`` follows the bytes in order and compares them with the cheapest
digest the server stored (S3's additional checksum, else the MD5 ETag), plus sha256 when asked.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable

from . import crc
from .pieces import Pieces


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
    weak_etag: bool = False  # a W/ ETag: names a version, not the bytes; never sent as If-Match
    #: S3 additional checksums (``x-amz-checksum-<algo>``, base64, "-N" when composite) by algorithm
    checksums: dict[str, str] = field(default_factory=dict)
    checksum_type: str | None = None  # FULL_OBJECT or COMPOSITE when the server says
    s3_api: bool = False  # served through the S3 API, where every server answers ranged GETs

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
        return lambda: _Crc(crc.crc32, 4)
    if algo in ("sha256", "sha1"):
        return lambda: hashlib.new(algo)
    if algo == "crc32c":
        return _crt_crc("crc32c", 4)
    if algo == "crc64nvme":
        return _crt_crc("crc64nvme", 8)
    return None


#: cheapest first: CRC32 runs at ~8 GB/s here (isal; zlib's ~2.2), sha256 ~1.8, MD5 ~0.5 (one core)
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
        self.pieces: Pieces | None = None  # set when workers hash the ranges they download (parallel)

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

    def parallel(self, size: int) -> Pieces | None:
        """Pieces for download workers to hash into, when what is compared is a CRC32 known now.

        Only then can the digest be computed range by range (``crc.combine``); MD5 and sha256 need
        the bytes in order, which the engine's follower reads back from the file.  Decided only when
        the stored checksum is already known (a HEAD's), so a GET's headers can still teach it later.
        """
        if self.sha is not None or not self.verify or "crc32" not in self.info.checksums:
            return None
        self._decide()
        if self.method != "crc32" or self.count:
            return None
        self.pieces = Pieces(size, self.part_size)
        return self.pieces

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
        if self.pieces is not None:
            digests = [value.to_bytes(4, "big") for value in self.pieces.digests()]
            if not self.part_size:
                return encode(digests[0])
        elif not self.part_size:
            return encode(self.cur.digest())
        else:
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
