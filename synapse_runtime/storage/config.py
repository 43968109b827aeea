"""What storage needs from the run's settings, in storage's units (bytes, bytes/s).

The values come from :class:`synapse_runtime.contract.settings.Settings` (the knob table in knobs.py is
the only place that states a default; docs/storage.md documents them, and a test holds the docs
to the table). Nothing here reads the environment: the runner hands its settings down, and the
public entry points (``fetch``, ``upload_dir``) called outside a run take the process's settings
(``settings.from_process``), read at call time so env files exported by the runner are seen.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..contract.settings import Settings

MiB = 1024 * 1024


@dataclass(frozen=True)
class StorageSettings:
    concurrency: int  # parallel range workers / objects in flight for a prefix
    part_size: int  # range size for parallel downloads, multipart part size for uploads
    strategy: str  # auto | single | parallel
    split_below: float  # bytes/s: in auto mode a single stream slower than this is split into ranges
    split_after: float  # seconds of single streaming before auto mode judges its rate
    retries: int  # retries per request/segment after the first try
    backoff: float  # base of the exponential backoff, seconds
    backoff_max: float  # cap of one backoff sleep, seconds
    connect_timeout: float
    read_timeout: float  # a stalled body longer than this is retried
    chunk: int  # bytes per socket read and pwrite
    max_extract_bytes: int
    max_extract_files: int
    max_extract_ratio: float  # an archive may expand to this many times its size (above 1 GiB); 0: no check
    cache_max_bytes: int | None  # None: computed from the cache filesystem (see cache.py)
    stale_seconds: float  # temp items older than this and unlocked are removed
    cache_lock_timeout: float  # give up on a cache lock whose holder shows no sign of life this long; 0: never
    verify_etag: bool
    writeback: int  # fdatasync in the background every this many bytes, so the final fsync is short
    direct_io: bool  # O_DIRECT writes where the filesystem takes them (sink.py)
    fast_path: bool  # sign S3 requests ourselves where that does what botocore would (awsenv.fast_path_refusal)
    cache_dir: str | None  # the chosen cache root; None: the built-in candidates (cache_dir_candidates)

    @classmethod
    def of(cls, settings: "Settings | None" = None) -> "StorageSettings":
        """Storage's view of ``settings`` (None: the process's settings, read now)."""
        if settings is None:
            from ..contract.settings import from_process

            settings = from_process()
        return cls(
            concurrency=settings.s3_concurrency,
            part_size=settings.s3_part_size,
            strategy=settings.s3_strategy,
            split_below=settings.s3_split_below_mibs * MiB,
            split_after=settings.s3_split_after,
            retries=settings.fetch_retries,
            backoff=settings.fetch_backoff,
            backoff_max=settings.fetch_backoff_max,
            connect_timeout=settings.s3_connect_timeout,
            read_timeout=settings.s3_read_timeout,
            chunk=settings.s3_chunk_size,
            max_extract_bytes=settings.extract_max_bytes,
            max_extract_files=settings.extract_max_files,
            max_extract_ratio=settings.extract_max_ratio,
            cache_max_bytes=settings.cache_max_bytes,
            stale_seconds=settings.cache_stale_seconds,
            cache_lock_timeout=settings.cache_lock_timeout,
            verify_etag=settings.verify_etag,
            writeback=settings.writeback_bytes,
            direct_io=settings.direct_io,
            fast_path=settings.s3_fast_path,
            cache_dir=settings.cache_dir,
        )


DEFAULT_CACHE_DIR = "/var/cache/synapse"


def cache_dir_candidates(explicit: str | os.PathLike[str] | None, configured: str | None = None) -> list[Path]:
    """Where the cache may live, best first: the argument, ``configured`` (SYNAPSE_CACHE_DIR), /var/cache/synapse, ~/.cache.

    An explicit choice (argument or env) is never silently replaced: if it is not writable the
    caller gets a StorageError.  Only the built-in default falls back to the user's cache dir,
    because outside a container /var/cache is usually root-owned.
    """
    if explicit is not None:
        return [Path(explicit)]
    if configured and configured.strip():
        return [Path(configured.strip())]
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    home_cache = Path(xdg) / "synapse" if xdg else Path.home() / ".cache" / "synapse"
    return [Path(DEFAULT_CACHE_DIR), home_cache]
