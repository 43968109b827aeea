"""An S3 prefix (``s3://bucket/prefix/``): every object below it, layout kept, as one cache entry.

One LIST revalidates the whole set (its keys, ETags and sizes are the cache key); the objects are
downloaded ``SYNAPSE_S3_CONCURRENCY`` at a time, each as one stream (many small objects gain nothing
from ranges), verified, and fsynced together at the end.  The steps: list (``_list``), name the
version (``_Listing.cache_key``), download the set into the cache's temp (``_PrefixDownload``, which
``Cache.produce`` runs under the key's lock) and report.
"""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable

from ..errors import ArchiveError, StorageError
from .archive import safe_member_path
from .awsenv import env_endpoint
from .cache import Cache, entry_key, fsync_tree
from .config import StorageSettings
from .diagnose import checksum_error
from .disk import start_writeback
from .progress import ProgressFn, Throttle
from .result import FetchResult
from .s3 import is_md5_etag
from .s3source import Source, open_source
from .transfer import ChecksumFailure, DownloadCancelled, Hasher, ObjectInfo, download
from .uri import ParsedURI, redact

Files = list[tuple[str, dict[str, Any]]]  # (path below the prefix, its LIST entry)


def fetch_prefix(parsed: ParsedURI, settings: StorageSettings, cache: Cache, progress: ProgressFn | None) -> FetchResult:
    """Every object below the prefix, layout kept; revalidated with one LIST (paged per 1000 keys)."""
    listing = _list(parsed, settings)
    throttle = Throttle(progress, redact(parsed.raw), listing.total, via=listing.source.name)
    dl = _PrefixDownload(listing, settings, throttle)
    try:
        meta, made = cache.produce(listing.cache_key(), "prefix", dl)
    except ChecksumFailure as exc:
        raise checksum_error(parsed.raw, listing.source.endpoint, exc.what, exc.expected, exc.actual) from None
    except StorageError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise listing.source.failure(exc, parsed) from None
    throttle.final(dl.done, not made)
    return FetchResult(Path(meta["path"]), redact(parsed.raw), dl.done, listing.total, not made, listing.source.name)


@dataclass(frozen=True)
class _Listing:
    """What one LIST said: who serves the prefix (and why not the fast path) and every object below it."""

    parsed: ParsedURI
    source: Source
    fallback: str | None
    files: Files

    @property
    def total(self) -> int:
        return sum(int(o["Size"]) for _, o in self.files)

    def cache_key(self) -> str:
        """This version of the whole set: any object added, removed or changed is another entry."""
        listing = hashlib.sha256("\n".join(f"{r}\t{o.get('ETag')}\t{o['Size']}" for r, o in self.files).encode())
        return entry_key(kind="prefix", endpoint=(env_endpoint() or self.source.endpoint).rstrip("/"),
                         bucket=self.parsed.bucket, prefix=self.parsed.key, listing=listing.hexdigest())


def _list(parsed: ParsedURI, settings: StorageSettings) -> _Listing:
    """The objects below the prefix (not the "directory" markers), each under a safe relative path."""
    source, listed, fallback = open_source(settings, parsed, lambda src: src.listing(parsed.bucket, parsed.key))
    objects = [o for o in listed if not str(o["Key"]).endswith("/")]
    if not objects:
        raise StorageError(f"cannot fetch {parsed.raw} from {source.endpoint}: no objects under this prefix (NoSuchKey)",
                           hint="check the prefix; for a single object drop the trailing '/'",
                           details={"uri": parsed.raw, "endpoint": source.endpoint, "cause": "NoSuchKey"})
    files: Files = []
    for o in objects:
        try:
            rel = safe_member_path(o["Key"][len(parsed.key):], parsed.raw)  # the same rule as archive members
        except ArchiveError as exc:
            raise StorageError(f"cannot fetch {parsed.raw}: object key {o['Key']!r} would leave the target directory",
                               hint="rename the object", details={"uri": parsed.raw, "cause": "unsafe key"}) from exc
        if rel:
            files.append((rel, o))
    return _Listing(parsed, source, fallback, files)


class _PrefixDownload:
    """``make`` for ``Cache.produce``: every listed object into ``work/<basename>``, verified, fsynced.

    A failed object fails the whole set at once (the others are stopped): a partial tree is never an entry.
    """

    def __init__(self, listing: _Listing, settings: StorageSettings, throttle: Throttle) -> None:
        self.listing = listing
        self.settings = settings
        self.throttle = throttle
        self.done = 0  # bytes transferred, all objects together
        self.verified: dict[str, int] = {}  # how each object was checked: {"crc32": 199, "md5": 1}
        self.cancel = threading.Event()  # set on the first failure or an interrupt: the others stop at once
        self._lock = threading.Lock()

    def __call__(self, work: Path) -> dict[str, Any]:
        listing = self.listing
        tree = work / listing.parsed.basename
        tree.mkdir(parents=True)
        _run_all(partial(self._one, tree), listing.files, self.settings.concurrency, self.cancel)
        fsync_tree(tree)
        return {"name": listing.parsed.basename, "bytes": listing.total, "total": listing.total,
                "uri": listing.parsed.raw, "endpoint": listing.source.endpoint, "kind": "prefix",
                "objects": len(listing.files), "verified": self.verified, "via": listing.source.name,
                **({"fallback": listing.fallback} if listing.fallback else {})}

    def _on_bytes(self, n: int) -> None:
        with self._lock:
            self.done += n
            current = self.done
        self.throttle.update(current)

    def _one(self, tree: Path, rel: str, o: dict[str, Any]) -> None:
        """One object as one stream; its ETag or stored checksum checked where it proves anything."""
        etag = (o.get("ETag") or "").strip('"') or None
        info = ObjectInfo(size=int(o["Size"]), etag=etag, md5_etag=bool(etag) and is_md5_etag(etag))
        opener = self.listing.source.ranges(self.listing.parsed.bucket, o["Key"], info)
        target = tree / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            hasher = Hasher(info, False, self.settings.verify_etag)
            download(fd, info, opener, self.settings, strategy="single", hasher=hasher, on_bytes=self._on_bytes,
                     cancel=self.cancel)
            if os.fstat(fd).st_size != info.size:
                raise ChecksumFailure("size", str(info.size), str(os.fstat(fd).st_size))
            try:
                hasher.check(None)
            except ChecksumFailure as exc:
                if exc.certain:
                    raise
            with self._lock:
                method = hasher.method or "size"
                self.verified[method] = self.verified.get(method, 0) + 1
            start_writeback(fd, 0, info.size)  # fsynced all together at the end
        finally:
            os.close(fd)


def _run_all(one: Callable[[str, dict[str, Any]], None], files: Files, workers: int, cancel: Any) -> None:
    """``one`` for every object, ``workers`` at a time; on the first failure or an interrupt (SIGTERM in
    the runner) queued objects are cancelled and running ones stopped, all joined before returning."""
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="synapse-prefix")
    futures = []
    try:
        futures = [pool.submit(one, rel, o) for rel, o in files]
        wait(futures, return_when=FIRST_EXCEPTION)
    except BaseException:
        for f in futures:  # queued ones first, or the freed workers would start them
            f.cancel()
        cancel.set()
        raise
    finally:
        if any(f.done() and not f.cancelled() and f.exception() is not None for f in futures):
            for f in futures:
                f.cancel()
            cancel.set()
        pool.shutdown(wait=True, cancel_futures=True)
    errors = [e for f in futures if f.done() and not f.cancelled() and (e := f.exception()) is not None]
    if errors:  # the first real failure, not the cancellations it caused
        raise next((e for e in errors if not isinstance(e, DownloadCancelled)), errors[0])
