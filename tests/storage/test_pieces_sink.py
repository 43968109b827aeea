"""Verification from memory (CRC pieces hashed by the workers) and direct writes (sink.py).

A parallel download is verified without reading the file back: each worker hashes what it has just
received and the pieces are combined.  These tests check the arithmetic against zlib, that a
corrupted byte is still caught on that path, and that the bytes bypass the page cache where the
filesystem allows (only an unaligned tail is written buffered) and fall back where it does not.
"""

from __future__ import annotations

import base64
import os
import random
import zlib
from pathlib import Path

import pytest

from synapse_runtime.storage import crc
from synapse_runtime.storage.config import StorageSettings
from synapse_runtime.storage.pieces import Coverage, Pieces
from synapse_runtime.storage.sink import ALIGN, Sink, buffer
from synapse_runtime.storage.transfer import ChecksumFailure, Hasher, ObjectInfo, download

MiB = 1 << 20


def _b64(value: int) -> str:
    return base64.b64encode(value.to_bytes(4, "big")).decode()


def test_combine_matches_zlib_for_both_backends() -> None:
    rng = random.Random(7)
    for _ in range(40):
        a = rng.randbytes(rng.randrange(0, 5000))
        b = rng.randbytes(rng.randrange(0, 5000))
        want = zlib.crc32(a + b)
        assert crc._combine(zlib.crc32(a), zlib.crc32(b), len(b)) == want
        assert crc.combine(zlib.crc32(a), zlib.crc32(b), len(b)) == want
        assert crc.crc32(b, crc.crc32(a)) == want


def test_pieces_join_into_part_crcs_whatever_the_cuts(monkeypatch) -> None:
    data = random.Random(3).randbytes(10_000)
    part = 3_000
    pieces = Pieces(len(data), part)
    # ranges that do not line up with the parts, fed in odd chunk sizes, out of order
    for start, end in [(7_000, 10_000), (0, 2_500), (2_500, 7_000)]:
        stream = pieces.stream(start)
        pos = start
        while pos < end:
            step = min(end - pos, 777)
            stream.feed(memoryview(data)[pos:pos + step])
            pos += step
        stream.close()
    assert pieces.digests() == [zlib.crc32(data[i:i + part]) for i in range(0, len(data), part)]
    whole = Pieces(len(data), 0)
    s = whole.stream(0)
    s.feed(data[:4_000])
    s.close()
    s = whole.stream(4_000)
    s.feed(data[4_000:])
    s.close()
    assert whole.digests() == [zlib.crc32(data)]


def test_pieces_that_leave_a_gap_are_an_engine_bug_not_a_pass() -> None:
    pieces = Pieces(100, 0)
    s = pieces.stream(0)
    s.feed(b"x" * 50)
    s.close()
    s = pieces.stream(60)
    s.feed(b"y" * 40)
    s.close()
    with pytest.raises(Coverage, match="gap at byte 50"):
        pieces.digests()


class _Source:
    """An object in memory; bodies with ``readinto`` like the fast path's, optionally corrupting one byte."""

    def __init__(self, data: bytes, corrupt_at: int | None = None) -> None:
        self.data = bytearray(data)
        if corrupt_at is not None:
            self.data[corrupt_at] ^= 0xFF

    def open(self, start: int, end: int):
        src = self

        class Body:
            pos = start

            def readinto(self, view) -> int:
                n = min(len(view), end - self.pos)
                view[:n] = src.data[self.pos:self.pos + n]
                self.pos += n
                return n

            def close(self) -> None:
                pass

        return Body()


def _settings(monkeypatch, **env: str) -> StorageSettings:
    for k, v in {"SYNAPSE_S3_PART_SIZE": str(MiB), "SYNAPSE_S3_CHUNK_SIZE": str(256 * 1024),
                 "SYNAPSE_S3_CONCURRENCY": "4", "SYNAPSE_S3_STRATEGY": "parallel", **env}.items():
        monkeypatch.setenv(k, v)
    return StorageSettings.of()


def _download(tmp_path: Path, info: ObjectInfo, src: _Source, st: StorageSettings, hasher: Hasher) -> None:
    fd = os.open(tmp_path / "out", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        download(fd, info, src.open, st, hasher=hasher)
    finally:
        os.close(fd)


def _composite_info(data: bytes, part: int) -> ObjectInfo:
    parts = [zlib.crc32(data[i:i + part]).to_bytes(4, "big") for i in range(0, len(data), part)]
    value = f"{_b64(zlib.crc32(b''.join(parts)))}-{len(parts)}"
    n = len(parts)
    return ObjectInfo(size=len(data), etag=f"{'0' * 32}-{n}", md5_etag=True, part_size=part,
                      part_size_confirmed=True, checksums={"crc32": value}, checksum_type="COMPOSITE")


@pytest.mark.parametrize("size", [6 * MiB, 6 * MiB + 1234])
def test_parallel_download_is_verified_from_memory_and_written_direct(tmp_path: Path, monkeypatch, size: int) -> None:
    data = os.urandom(size)
    info = _composite_info(data, 768 * 1024)  # upload parts that do not match the 1 MiB ranges
    hasher = Hasher(info, want_sha256=False)
    target = tmp_path / "out"
    fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o644)
    seen: list[Sink] = []
    real_init = Sink.__init__

    def spy(self, *a, **kw):
        real_init(self, *a, **kw)
        seen.append(self)

    monkeypatch.setattr(Sink, "__init__", spy)
    try:
        download(fd, info, _Source(data).open, _settings(monkeypatch), hasher=hasher)
        hasher.check(None)
    finally:
        os.close(fd)
    assert target.read_bytes() == data
    assert hasher.pieces is not None and hasher.method == "crc32"  # no read-back: the workers hashed
    probe = Sink(os.open(tmp_path / "probe", os.O_RDWR | os.O_CREAT, 0o644), True, 1 << 30)
    direct_here = probe.direct
    probe.close()
    if direct_here:  # this filesystem takes O_DIRECT: everything but the unaligned tail bypassed the page cache
        assert seen[0].buffered == size % (256 * 1024) if size % ALIGN else seen[0].buffered == 0


def test_a_corrupt_byte_is_caught_on_the_from_memory_path(tmp_path: Path, monkeypatch) -> None:
    data = os.urandom(5 * MiB)
    info = _composite_info(data, MiB)
    hasher = Hasher(info, want_sha256=False)
    _download(tmp_path, info, _Source(data, corrupt_at=3 * MiB + 5), _settings(monkeypatch), hasher)
    assert hasher.pieces is not None
    with pytest.raises(ChecksumFailure, match="CRC32"):
        hasher.check(None)


def test_sha256_asked_keeps_the_in_order_follower(tmp_path: Path, monkeypatch) -> None:
    data = os.urandom(5 * MiB)
    info = _composite_info(data, MiB)
    hasher = Hasher(info, want_sha256=True)
    _download(tmp_path, info, _Source(data), _settings(monkeypatch), hasher)
    import hashlib

    assert hasher.pieces is None
    hasher.check(hashlib.sha256(data).hexdigest())


def test_a_filesystem_that_refuses_direct_writes_gets_buffered_ones(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o644)
    sink = Sink(fd, True, 1 << 30)
    try:
        assert sink.direct, f"{tmp_path} takes no O_DIRECT: run the suite with a tmp dir on ext4/xfs"
        odd = bytearray(os.urandom(ALIGN + 1))
        unaligned = memoryview(odd)[1:]  # a misaligned address: O_DIRECT answers EINVAL
        sink.write(unaligned, 0, aligned=True)
        assert not sink.direct and sink.buffered == ALIGN  # turned off, the bytes written anyway
        good = buffer(ALIGN)
        good[:] = b"z" * ALIGN
        sink.write(good, ALIGN, aligned=True)
        assert sink.buffered == 2 * ALIGN
    finally:
        sink.close()
        os.close(fd)
    assert (tmp_path / "f").read_bytes() == bytes(odd[1:]) + b"z" * ALIGN
