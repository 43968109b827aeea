"""An S3 prefix (``s3://bucket/prefix/``): every object below it, layout kept, as one cache entry.

One LIST revalidates the whole set (its keys, ETags and sizes are the cache key); the objects are
downloaded ``SYNAPSE_S3_CONCURRENCY`` at a time, each as one stream (many small objects gain nothing
from ranges), verified, and fsynced together at the end.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable

from ..errors import ArchiveError, StorageError
from . import archive as arc
from .cache import Cache, entry_key
from .config import StorageSettings
from .diagnose import checksum_error
from .progress import ProgressFn, Throttle
from .result import FetchResult
from .disk import start_writeback
from .s3source import open_source
from .transfer import ChecksumFailure, Hasher, ObjectInfo, download
from .uri import ParsedURI, redact


def fetch_prefix(parsed: ParsedURI, settings: StorageSettings, cache: Cache, progress: ProgressFn | None) -> FetchResult:
    """Every object below the prefix, layout kept; revalidated with one LIST (paged per 1000 keys)."""
    source, listed, fallback = open_source(settings, parsed, lambda src: src.listing(parsed.bucket, parsed.key))
    objects = [o for o in listed if not str(o["Key"]).endswith("/")]
    endpoint = source.endpoint
    if not objects:
        raise StorageError(f"cannot fetch {parsed.raw} from {endpoint}: no objects under this prefix (NoSuchKey)",
                           hint="check the prefix; for a single object drop the trailing '/'",
                           details={"uri": parsed.raw, "endpoint": endpoint, "cause": "NoSuchKey"})
    files: list[tuple[str, dict[str, Any]]] = []
    for o in objects:
        rel = o["Key"][len(parsed.key):]
        try:
            rel = arc._safe_name(rel, parsed.raw)  # noqa: SLF001 - same rule as archives
        except ArchiveError as exc:
            raise StorageError(f"cannot fetch {parsed.raw}: object key {o['Key']!r} would leave the target directory",
                               hint="rename the object", details={"uri": parsed.raw, "cause": "unsafe key"}) from exc
        if rel:
            files.append((rel, o))
    listing = hashlib.sha256("\n".join(f"{r}\t{o.get('ETag')}\t{o['Size']}" for r, o in files).encode()).hexdigest()
    from .awsenv import env_endpoint

    via = source.name
    key = entry_key(kind="prefix", endpoint=(env_endpoint() or endpoint).rstrip("/"), bucket=parsed.bucket,
                    prefix=parsed.key, listing=listing)
    total = sum(int(o["Size"]) for _, o in files)
    throttle = Throttle(progress, redact(parsed.raw), total, via=via)
    meta = cache.lookup(key)
    if meta is not None:
        throttle.final(0, True)
        return FetchResult(Path(meta["path"]), redact(parsed.raw), 0, total, True, via)
    with cache.lock(key):
        meta = cache.lookup(key)
        if meta is not None:
            throttle.final(0, True)
            return FetchResult(Path(meta["path"]), redact(parsed.raw), 0, total, True, via)
        cache.clean_stale()
        work = cache.tmp_path(key, "prefix")
        tree = work / parsed.basename
        tree.mkdir(parents=True)
        done = [0]
        import threading

        lock = threading.Lock()
        verified: dict[str, int] = {}  # how each object was checked: {"crc32": 199, "md5": 1}
        cancel = threading.Event()  # set on the first failure or an interrupt: the others stop at once

        def on_bytes(n: int) -> None:
            with lock:
                done[0] += n
                current = done[0]
            throttle.update(current)

        def one(rel: str, o: dict[str, Any]) -> None:
            from .s3 import _is_md5_etag

            okey = o["Key"]
            etag = (o.get("ETag") or "").strip('"') or None
            info = ObjectInfo(size=int(o["Size"]), etag=etag, md5_etag=bool(etag) and _is_md5_etag(etag))
            opener = source.ranges(parsed.bucket, okey, info)
            target = tree / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            try:
                hasher = Hasher(info, False, settings.verify_etag)
                download(fd, info, opener, settings, strategy="single", hasher=hasher, on_bytes=on_bytes, cancel=cancel)
                if os.fstat(fd).st_size != info.size:
                    raise ChecksumFailure("size", str(info.size), str(os.fstat(fd).st_size))
                try:
                    hasher.check(None)
                except ChecksumFailure as exc:
                    if exc.certain:
                        raise
                with lock:
                    method = hasher.method or "size"
                    verified[method] = verified.get(method, 0) + 1
                start_writeback(fd, 0, info.size)  # fsynced all together at the end
            finally:
                os.close(fd)

        try:
            _run_all(one, files, settings.concurrency, cancel)
            from .cache import fsync_tree

            fsync_tree(tree)
            meta = cache.commit(key, work, {"name": parsed.basename, "bytes": total, "total": total, "uri": parsed.raw,
                                            "endpoint": endpoint, "kind": "prefix", "objects": len(files),
                                            "verified": verified, "via": via,
                                            **({"fallback": fallback} if fallback else {})})
        except ChecksumFailure as exc:
            raise checksum_error(parsed.raw, endpoint, exc.what, exc.expected, exc.actual) from None
        except StorageError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise source.failure(exc, parsed) from None
        finally:
            shutil.rmtree(work, ignore_errors=True)
    cache.evict()
    throttle.final(done[0], False)
    return FetchResult(Path(meta["path"]), redact(parsed.raw), done[0], total, False, via)


def _run_all(one: Callable[[str, dict[str, Any]], None], files: list[tuple[str, dict[str, Any]]], workers: int,
             cancel: Any) -> None:
    """``one`` for every object, ``workers`` at a time; on the first failure or an interrupt (SIGTERM in
    the runner) queued objects are cancelled and running ones stopped, all joined before returning."""
    from .transfer import DownloadCancelled

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
