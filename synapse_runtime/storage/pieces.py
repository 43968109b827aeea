"""CRC32 of an object hashed by the workers that download it, range by range, joined at the end.

A parallel download used to be verified by a follower thread that read the file back in order and
hashed it: a second copy of every byte through the kernel, on the machine's busiest path.  A CRC of
adjacent ranges can be combined (``crc.combine``), so each worker hashes what it has just received,
while it is still in the CPU's cache, and ``Pieces.digests`` joins the pieces into the object's
checksum: one CRC for a FULL_OBJECT checksum, one per upload part for a COMPOSITE one (a piece
never straddles a part boundary, so no piece is hashed twice).
"""

from __future__ import annotations

import threading

from . import crc


class Coverage(Exception):
    """The pieces do not cover the object exactly once: a bug in the engine, never a bad transfer."""


class Pieces:
    """Thread-safe collector of (start, length, crc) pieces of one object."""

    def __init__(self, size: int, part_size: int) -> None:
        self.size = size
        self.part_size = part_size  # 0: one checksum over the whole object
        self._lock = threading.Lock()
        self._done: list[tuple[int, int, int]] = []

    def stream(self, start: int) -> "PieceStream":
        """A running CRC for one worker's contiguous bytes from ``start``."""
        return PieceStream(self, start)

    def add(self, start: int, length: int, value: int) -> None:
        with self._lock:
            self._done.append((start, length, value))

    def digests(self) -> list[int]:
        """The CRC of each part (or one CRC of the whole object), from the pieces in offset order."""
        with self._lock:
            pieces = sorted(self._done)
        out: list[int] = []
        pos = 0
        part = -1
        for start, length, value in pieces:
            if start != pos:
                raise Coverage(f"hashed pieces {'overlap' if start < pos else 'leave a gap'} at byte {pos}")
            index = start // self.part_size if self.part_size else 0
            if index != part:
                out.append(value)
                part = index
            else:
                out[-1] = crc.combine(out[-1], value, length)
            pos = start + length
        if pos != self.size:
            raise Coverage(f"hashed pieces end at byte {pos} of {self.size}")
        return out or [0]


class PieceStream:
    """One worker's bytes in order: cut into a new piece at every part boundary and at ``close``."""

    __slots__ = ("owner", "start", "pos", "value")

    def __init__(self, owner: Pieces, start: int) -> None:
        self.owner = owner
        self.start = start
        self.pos = start
        self.value = 0

    def feed(self, data: bytes | memoryview) -> None:
        part = self.owner.part_size
        if not part or self.pos // part == (self.pos + len(data) - 1) // part:
            self.value = crc.crc32(data, self.value)  # the common case: no boundary inside
            self.pos += len(data)
            if part and self.pos % part == 0:
                self.close()
            return
        view = memoryview(data)
        while len(view):
            take = min(len(view), (self.pos // part + 1) * part - self.pos)
            self.value = crc.crc32(view[:take], self.value)
            self.pos += take
            view = view[take:]
            if self.pos % part == 0:
                self.close()

    def close(self) -> None:
        """Record what was hashed since the last cut (idempotent; called when the range ends or fails)."""
        if self.pos > self.start:
            self.owner.add(self.start, self.pos - self.start, self.value)
        self.start = self.pos
        self.value = 0
