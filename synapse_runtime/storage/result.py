"""What ``fetch`` returns: where the bytes are, how many moved, and which path served them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FetchResult:
    path: Path  # local file or directory (extracted archive / prefix download / local path as is)
    uri: str
    bytes: int  # bytes transferred this time (0 on a cache hit or a local path)
    total: int | None  # total size of the object(s)
    cached: bool  # served from the cache (after one revalidation request) or a local path
    via: str | None = None  # "fast path", "boto3", "http" or "local": which path served (never silent)
