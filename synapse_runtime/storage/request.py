"""One object fetch as one value: what the source (``sources.py``) hands the object path (``objects.py``).

A dozen facts travel together from the revalidation request down to the download, the checksum
checks and the extraction: which object and version, where it is cached, how the source opens it
and words its failures, and what the caller asked for.  Passed as one frozen value, each step's
signature says only what the step adds, and a second source builds the same value the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import StorageError
from .cache import Cache, entry_key
from .config import StorageSettings
from .progress import ProgressFn
from .transfer import ObjectInfo, Opener
from .uri import ParsedURI, redact


@dataclass(frozen=True, slots=True)
class ObjectRequest:
    # where it is cached, under which settings
    cache: Cache
    settings: StorageSettings
    # which object, which version: the revalidation's answer and the cache key derived from it
    parsed: ParsedURI
    info: ObjectInfo
    key: str
    # who serves it: how to open it for ranged reads, how to word a failure, which path it is
    endpoint: str
    make_opener: Callable[[], Opener]
    on_error: Callable[[BaseException], StorageError]
    via: str = "http"  # "fast path", "boto3" or "http": in the result and the cache entry
    fallback: str | None = None  # why not the fast path, when an S3 object is served by boto3
    before_wait: Callable[[], None] | None = None  # before waiting for another process (drop an idle connection)
    # what the caller asked for
    extract: bool = False
    sha256: str | None = None
    progress: ProgressFn | None = None

    @property
    def label(self) -> str:
        """The URI as it may be shown: a presigned URL's query string is a credential."""
        return redact(self.parsed.raw)

    @property
    def extract_key(self) -> str | None:
        """The key of the extracted tree, an entry derived from the object's; None unless extracting."""
        return entry_key(kind="extract", base=self.key) if self.extract else None

    def route(self) -> dict[str, str]:
        """What the cache entry records about the path that served it (``via``, ``fallback``)."""
        return {k: v for k, v in (("via", self.via), ("fallback", self.fallback)) if v}
