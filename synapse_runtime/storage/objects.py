"""The common path of one object (S3 or HTTP), whoever serves it: into the cache, verified, extracted.

The order of events:

1. the caller's one revalidation request (HEAD for S3, the first GET's headers for presigned URLs)
   gave size, ETag and version, hence the cache key;
2. a complete entry under that key is a hit: pinned, touched (LRU), returned;
3. otherwise the key's lock is taken (others wait), the entry looked up again (someone may have
   just finished it), stale temp files removed, and the object downloaded into ``tmp/``,
   verified (size, ETag or stored checksum, sha256), fsynced and renamed into ``objects/``;
4. extraction, when asked, is a second entry derived from the first, produced the same way;
5. the cache is trimmed to its bound (LRU, skipping entries any process has pinned).

The source (``sources.py``) only says how to open the object (``make_opener``) and how to word its
failures (``on_error``); nothing here knows S3 from HTTP.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Callable

from ..errors import ArchiveError, StorageError
from . import archive as arc
from .cache import Cache, entry_key
from .config import StorageSettings
from .diagnose import checksum_error
from .progress import ProgressFn, Throttle
from .result import FetchResult
from .transfer import ChecksumFailure, Hasher, ObjectInfo, Opener, download
from .uri import ParsedURI, redact

log = logging.getLogger("synapse_runtime.storage")


def fetch_object(cache: Cache, settings: StorageSettings, parsed: ParsedURI, endpoint: str, info: ObjectInfo, key: str,
                  make_opener: Callable[[], tuple[Opener, Any]], on_error: Callable[[BaseException], StorageError],
                  extract: bool, sha256: str | None, progress: ProgressFn | None,
                  before_wait: Callable[[], None] | None = None, via: str = "http",
                  fallback: str | None = None) -> FetchResult:
    """``via``: which path serves (``fast path``, ``boto3``, ``http``); ``fallback``: why not the fast path."""
    throttle = Throttle(progress, redact(parsed.raw), info.size, via=via)
    extract_key = entry_key(kind="extract", base=key) if extract else None
    meta = cache.lookup(extract_key or key)
    if meta is not None:
        if before_wait:
            before_wait()
        _check_hit_sha256(cache, settings, parsed, endpoint, key, extract_key, meta, sha256, make_opener, on_error)
        throttle.final(0, True)
        return FetchResult(Path(meta["path"]), redact(parsed.raw), 0, int(meta.get("total", meta["bytes"])), True, via)
    transferred = 0
    obj = cache.lookup(key)
    if obj is None:
        obj, transferred = _produce_object(cache, settings, parsed, endpoint, info, key, make_opener, on_error, sha256,
                                           throttle, before_wait, {"via": via, "fallback": fallback})
    elif sha256 is not None:
        _check_hit_sha256(cache, settings, parsed, endpoint, key, None, obj, sha256, make_opener, on_error)
    if extract_key is not None:
        meta = ensure_extracted(cache, settings, key, Path(obj["path"]), parsed.raw, parsed.basename, sha256, extract_key=extract_key,
                                 archive_sha256=obj.get("sha256"))
    else:
        meta = obj
    cache.evict()
    throttle.final(transferred, transferred == 0)
    return FetchResult(Path(meta["path"]), redact(parsed.raw), transferred, info.size, transferred == 0, via)


def _produce_object(cache: Cache, settings: StorageSettings, parsed: ParsedURI, endpoint: str, info: ObjectInfo, key: str,
                    make_opener: Callable[[], tuple[Opener, Any]], on_error: Callable[[BaseException], StorageError],
                    sha256: str | None, throttle: Throttle, before_wait: Callable[[], None] | None,
                    route: dict[str, str | None] | None = None) -> tuple[dict[str, Any], int]:
    lock = cache.lock(key)
    if not lock.acquire(blocking=False):
        if before_wait:
            before_wait()  # don't hold an idle connection while another process downloads
        lock.acquire()
    try:
        meta = cache.lookup(key)
        if meta is not None:  # another process finished it while we waited
            if sha256 is not None:
                _check_hit_sha256(cache, settings, parsed, endpoint, key, None, meta, sha256, make_opener, on_error)
            return meta, 0
        cache.clean_stale()
        try:
            opener, _ = make_opener()
        except StorageError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise on_error(exc) from None
        done = 0

        def on_bytes(n: int) -> None:
            nonlocal done
            done += n
            throttle.update(done)

        uncertain: str | None = None  # first download's digest when its multipart ETag was not verifiable
        for attempt in (1, 2):
            work = cache.tmp_path(key, "dl")
            work.mkdir()
            target = work / parsed.basename
            fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            try:
                hasher = Hasher(info, sha256 is not None, settings.verify_etag)
                try:
                    download(fd, info, opener, settings, hasher=hasher, on_bytes=on_bytes)
                    size = os.fstat(fd).st_size
                    if size != info.size:
                        raise ChecksumFailure("size", str(info.size), str(size))
                    try:
                        hasher.check(sha256)  # an uncertain ETag mismatch comes after the sha256 check
                    except ChecksumFailure as exc:
                        if exc.what != "multipart ETag" or exc.certain:
                            raise
                        # The part size was guessed: a mismatch may be the guess or corrupt bytes.  A
                        # matching sha256 settles it; without one, a second download must agree.
                        if sha256 is None and (attempt == 1 or exc.actual != uncertain):
                            raise ChecksumFailure(exc.what, exc.expected, exc.actual,
                                                  certain=attempt > 1) from None
                        log.warning("%s: multipart ETag not verifiable (part size unknown); %s", redact(parsed.raw),
                                    "sha256 verified" if sha256 else "two downloads agree")
                    os.fsync(fd)
                except ChecksumFailure as exc:
                    # A sha256 mismatch on bytes whose ETag matched is the object itself: no point in
                    # a second download.  Without a verified ETag it may be corruption in transit.
                    if attempt == 1 and (exc.what != "sha256" or not hasher.etag_verified):
                        if exc.what == "multipart ETag" and not exc.certain:
                            uncertain = exc.actual
                        log.warning("%s: %s; downloading again", redact(parsed.raw), exc)
                        shutil.rmtree(work, ignore_errors=True)
                        continue
                    raise checksum_error(parsed.raw, endpoint, exc.what, exc.expected, exc.actual) from None
                except StorageError:
                    raise
                except Exception as exc:  # noqa: BLE001
                    raise on_error(exc) from None
            finally:
                os.close(fd)
            meta = cache.commit(key, work, {"name": parsed.basename, "bytes": info.size, "total": info.size,
                                            "uri": redact(parsed.raw), "endpoint": endpoint, "etag": info.etag,
                                            "sha256": hasher.sha256_hex(), "kind": "object",
                                            "verified": hasher.method or "size",
                                            **{k: v for k, v in (route or {}).items() if v}})
            return meta, done
        raise AssertionError("unreachable")
    finally:
        cache.clean_key_tmp(key)  # this key's temps: we hold its lock (rules: Cache.clean_key_tmp)
        lock.release()


def _check_hit_sha256(cache: Cache, settings: StorageSettings, parsed: ParsedURI, endpoint: str, key: str, extract_key: str | None,
                      meta: dict[str, Any], sha256: str | None, make_opener: Callable[[], tuple[Opener, Any]],
                      on_error: Callable[[BaseException], StorageError]) -> None:
    """An expected sha256 holds for cached content too: compare with the recorded or computed digest."""
    if sha256 is None:
        return
    recorded = meta.get("archive_sha256" if extract_key else "sha256")
    if recorded is None:
        obj = cache.lookup(key)
        if obj is None:  # the archive was evicted after extraction: fetch it again to verify
            throttle = Throttle(None, parsed.raw, None)
            obj, _ = _produce_object(cache, settings, parsed, endpoint, _info_from_meta(meta), key, make_opener, on_error,
                                     sha256, throttle, None)
        recorded = obj.get("sha256") or sha256_file(Path(obj["path"]))
        cache.update_meta(key, sha256=recorded)
        if extract_key:
            cache.update_meta(extract_key, archive_sha256=recorded)
    if recorded != sha256:
        raise checksum_error(parsed.raw, endpoint, "sha256", sha256, recorded)


def _info_from_meta(meta: dict[str, Any]) -> ObjectInfo:
    return ObjectInfo(size=int(meta.get("total", 0)), etag=meta.get("etag"))


def ensure_extracted(cache: Cache, settings: StorageSettings, base_key: str, archive_path: Path, uri: str, name: str,
                      sha256: str | None, *, extract_key: str | None = None, archive_sha256: str | None = None) -> dict[str, Any]:
    extract_key = extract_key or entry_key(kind="extract", base=base_key)
    meta = cache.lookup(extract_key)
    if meta is not None:
        return meta
    with cache.lock(extract_key):
        meta = cache.lookup(extract_key)
        if meta is not None:
            return meta
        work = cache.tmp_path(extract_key, "x")
        work.mkdir()
        stem = arc.archive_stem(name)
        try:
            written = arc.extract(archive_path, work / stem, max_bytes=settings.max_extract_bytes,
                                  max_files=settings.max_extract_files, label=redact(uri), max_ratio=settings.max_extract_ratio)
            from .cache import fsync_tree

            fsync_tree(work / stem)
            return cache.commit(extract_key, work, {"name": stem, "bytes": written, "total": archive_path.stat().st_size,
                                             "uri": redact(uri), "kind": "extract",
                                             "archive_sha256": archive_sha256 or sha256})
        except ArchiveError:
            raise
        except OSError as exc:
            raise ArchiveError(f"cannot extract {redact(uri)}: {exc.strerror or exc}",
                               hint="free space in SYNAPSE_CACHE_DIR", details={"cause": "disk"}) from exc
        finally:
            shutil.rmtree(work, ignore_errors=True)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(4 << 20):
            h.update(block)
    return h.hexdigest()
