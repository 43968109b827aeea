"""Budgets for one extraction: bytes, entries, expansion ratio and the cache's free space.

An archive comes from outside, and a few MB of zip can expand to terabytes of zeros.  Each budget
is checked twice: against what the archive declares (a zip's central directory up front, each tar
header before its data is written), so an honest bomb is refused before anything is written, and
against what was actually written, so lying headers do not help either.  Every refusal is an
``ArchiveError`` (exit 4, like every storage failure) that names the knob to raise.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ArchiveError

GiB = 1024**3
#: archives that expand to no more than this are never refused for their ratio (small configs
#: and tokenizers compress far better than weights, and cannot fill a disk)
RATIO_FLOOR_BYTES = 1 * GiB
#: left free on the cache filesystem after an extraction, for the metadata and other writers
FREE_SPACE_HEADROOM = 64 * 1024**2


def human(n: float) -> str:
    """Bytes as a short human figure for messages (``3.0 GiB``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def free_bytes(path: Path) -> int | None:
    """Bytes an unprivileged writer may still use on the filesystem holding ``path`` (None: unknown)."""
    try:
        vfs = os.statvfs(path)
    except OSError:
        return None
    return vfs.f_bavail * vfs.f_frsize


class Limits:
    """What one extraction may still write; raises ArchiveError when a budget would be exceeded."""

    def __init__(self, label: str, *, max_bytes: int, max_files: int, archive_size: int = 0,
                 max_ratio: float = 0.0, free: int | None = None) -> None:
        self.label = label
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.archive_size = archive_size
        self.max_ratio = max_ratio
        self.ratio_bytes = max(int(max_ratio * archive_size), RATIO_FLOOR_BYTES) if max_ratio > 0 else 0
        self.free = None if free is None else max(0, free - FREE_SPACE_HEADROOM)
        self.bytes = 0
        self.files = 0

    def count_file(self, n: int = 1) -> None:
        self.files += n
        if self.max_files and self.files > self.max_files:
            raise ArchiveError(f"{self.label}: more than {self.max_files} entries (archive bomb?)",
                               hint="raise SYNAPSE_EXTRACT_MAX_FILES if this archive is trusted",
                               details={"cause": "too many files", "knob": "SYNAPSE_EXTRACT_MAX_FILES"})

    def add_bytes(self, n: int) -> None:
        """Count ``n`` bytes just written."""
        self.bytes += n
        self._check(self.bytes, declared=False)

    def expect(self, n: int) -> None:
        """Refuse before writing when ``n`` more declared bytes would exceed a budget."""
        self._check(self.bytes + n, declared=True)

    def _check(self, total: int, declared: bool) -> None:
        how = f"declares {human(total)}" if declared else f"expands to over {human(total - 1)}"
        if self.max_bytes and total > self.max_bytes:
            raise ArchiveError(f"{self.label}: expands to more than {self.max_bytes} bytes (archive bomb?)",
                               hint="raise SYNAPSE_EXTRACT_MAX_BYTES if this archive is trusted",
                               details={"cause": "too big", "knob": "SYNAPSE_EXTRACT_MAX_BYTES",
                                        "limit": self.max_bytes})
        if self.ratio_bytes and total > self.ratio_bytes:
            raise ArchiveError(
                f"{self.label}: {how}, more than {self.max_ratio:g} times the archive's "
                f"{human(self.archive_size)} (limit {human(self.ratio_bytes)}): absurd for model weights "
                "(archive bomb?)",
                hint="raise SYNAPSE_EXTRACT_MAX_RATIO (0 turns the ratio check off) if this archive is trusted",
                details={"cause": "expansion ratio", "knob": "SYNAPSE_EXTRACT_MAX_RATIO",
                         "archive_bytes": self.archive_size, "limit": self.ratio_bytes})
        if self.free is not None and total > self.free:
            raise ArchiveError(
                f"{self.label}: {how}, more than the cache filesystem has free "
                f"({human(self.free)} after a {human(FREE_SPACE_HEADROOM)} headroom)",
                hint="give SYNAPSE_CACHE_DIR a larger volume, or free space there (a lower "
                     "SYNAPSE_CACHE_MAX_BYTES makes eviction keep more room)",
                details={"cause": "no space", "knob": "SYNAPSE_CACHE_DIR", "free_bytes": self.free,
                         "needed_bytes": total})
