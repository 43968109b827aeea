"""CRC32 at hardware speed, and the CRC of two adjacent byte ranges from the CRCs of each.

Every downloaded byte is verified, so the CRC's speed is part of a download's CPU cost: zlib's
CRC32 runs at ~2.2 GB/s on the 2-core bench machine (a sixth of a verified 1 GiB download's CPU),
ISA-L's (python-isal: PCLMUL/AVX-512 folding, the library behind igzip) at ~8 GB/s.  ``combine``
lets parallel workers hash the ranges they download straight from memory and the pieces be joined
afterwards, instead of one thread reading the whole file back to hash it in order (pieces.py).
Without isal (a platform without its wheel) zlib and a pure-Python combine give the same values.
"""

from __future__ import annotations

from typing import Callable

_POLY = 0xEDB88320  # CRC-32 (ISO-HDLC), reflected


def _multmodp(a: int, b: int) -> int:
    """a * b modulo the CRC polynomial, in reflected bit order (zlib's crc32_combine arithmetic)."""
    m = 1 << 31
    p = 0
    while True:
        if a & m:
            p ^= b
            if not a & (m - 1):
                return p
        m >>= 1
        b = (b >> 1) ^ _POLY if b & 1 else b >> 1


def _powers() -> list[int]:
    table = [1 << 30]  # x^1
    for _ in range(31):
        table.append(_multmodp(table[-1], table[-1]))  # x^(2^k)
    return table


_X2N = _powers()


def _x2nmodp(n: int, k: int) -> int:
    """x^(n * 2^k) modulo the polynomial."""
    p = 1 << 31  # x^0
    while n:
        if n & 1:
            p = _multmodp(_X2N[k & 31], p)
        n >>= 1
        k += 1
    return p


def _combine(crc1: int, crc2: int, len2: int) -> int:
    return _multmodp(_x2nmodp(len2, 3), crc1) ^ crc2


crc32: Callable[..., int]
combine: Callable[[int, int, int], int]
try:
    from isal.isal_zlib import crc32, crc32_combine as combine  # type: ignore[import-not-found,no-redef]

    BACKEND = "isal"
except ImportError:  # pragma: no cover - exercised where isal has no wheel
    from zlib import crc32  # type: ignore[no-redef]

    combine = _combine
    BACKEND = "zlib"
