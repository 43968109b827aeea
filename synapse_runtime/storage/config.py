"""Tuning knobs, read from the environment at call time (never at import time).

The runner copies env files and Secret directories into ``os.environ`` just before it calls
``fetch``; reading the knobs lazily means those values are seen.  Every knob is documented in
docs/storage.md with its default; defaults were picked by measurement (bench/download.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MiB = 1024 * 1024
GiB = 1024 * MiB


def _int(name: str, default: int, minimum: int = 0) -> int:
    from ..knobs import KNOBS, get

    if name in KNOBS:  # the one table (synapse_runtime/knobs.py): typed, bad values are errors
        value = get(name)
        return default if value is None else value
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(float(_strip_unit(raw)))
    except ValueError:
        return default
    return max(minimum, value)


def _float(name: str, default: float, minimum: float = 0.0) -> float:
    from ..knobs import KNOBS, get

    if name in KNOBS:
        return float(get(name))
    raw = os.environ.get(name, "").strip()
    try:
        return max(minimum, float(raw)) if raw else default
    except ValueError:
        return default


_UNITS = {"k": 1024, "m": MiB, "g": GiB, "t": 1024 * GiB}


def _strip_unit(raw: str) -> str:
    """Accept sizes like ``64M``, ``64MiB``, ``2G`` as well as plain byte counts."""
    r = raw.lower().removesuffix("ib").removesuffix("b")
    if r and r[-1] in _UNITS:
        return str(float(r[:-1]) * _UNITS[r[-1]])
    return r


@dataclass(frozen=True)
class Settings:
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
    direct_io: bool = True  # O_DIRECT writes where the filesystem takes them (sink.py)

    @classmethod
    def from_env(cls) -> "Settings":
        from ..knobs import get

        strategy = get("SYNAPSE_S3_STRATEGY")
        raw_max = os.environ.get("SYNAPSE_CACHE_MAX_BYTES", "").strip()
        return cls(
            concurrency=_int("SYNAPSE_S3_CONCURRENCY", 8, 1),
            part_size=_int("SYNAPSE_S3_PART_SIZE", 16 * MiB, 64 * 1024),
            strategy=strategy,
            split_below=_float("SYNAPSE_S3_SPLIT_BELOW_MIBS", 2048.0) * MiB,
            split_after=_float("SYNAPSE_S3_SPLIT_AFTER", 0.05),
            retries=_int("SYNAPSE_FETCH_RETRIES", 5, 0),
            backoff=_float("SYNAPSE_FETCH_BACKOFF", 0.5),
            backoff_max=_float("SYNAPSE_FETCH_BACKOFF_MAX", 20.0),
            connect_timeout=_float("SYNAPSE_S3_CONNECT_TIMEOUT", 10.0, 0.05),
            read_timeout=_float("SYNAPSE_S3_READ_TIMEOUT", 60.0, 0.05),
            chunk=_int("SYNAPSE_S3_CHUNK_SIZE", 256 * 1024, 4096),
            max_extract_bytes=_int("SYNAPSE_EXTRACT_MAX_BYTES", 200 * GiB, 0),
            max_extract_files=_int("SYNAPSE_EXTRACT_MAX_FILES", 1_000_000, 0),
            max_extract_ratio=_float("SYNAPSE_EXTRACT_MAX_RATIO", 100.0),
            cache_max_bytes=_int("SYNAPSE_CACHE_MAX_BYTES", 0, 0) if raw_max else None,
            stale_seconds=_float("SYNAPSE_CACHE_STALE_SECONDS", 3600.0),
            cache_lock_timeout=_float("SYNAPSE_CACHE_LOCK_TIMEOUT", 300.0),
            writeback=_int("SYNAPSE_WRITEBACK_BYTES", 32 * MiB, 1 * MiB),
            verify_etag=get("SYNAPSE_VERIFY_ETAG"),
            direct_io=get("SYNAPSE_DIRECT_IO"),
        )


DEFAULT_CACHE_DIR = "/var/cache/synapse"


def cache_dir_candidates(explicit: str | os.PathLike[str] | None) -> list[Path]:
    """Where the cache may live, best first: the argument, SYNAPSE_CACHE_DIR, /var/cache/synapse, ~/.cache.

    An explicit choice (argument or env) is never silently replaced: if it is not writable the
    caller gets a StorageError.  Only the built-in default falls back to the user's cache dir,
    because outside a container /var/cache is usually root-owned.
    """
    if explicit is not None:
        return [Path(explicit)]
    env = os.environ.get("SYNAPSE_CACHE_DIR", "").strip()
    if env:
        return [Path(env)]
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    home_cache = Path(xdg) / "synapse" if xdg else Path.home() / ".cache" / "synapse"
    return [Path(DEFAULT_CACHE_DIR), home_cache]
