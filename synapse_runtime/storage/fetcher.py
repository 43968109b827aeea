"""``fetch``: resolve a URI to a verified local path, through the cache.

The order of events for one object (S3 or HTTP):

1. one revalidation request (HEAD for S3, the first GET's headers for presigned URLs) gives
   size, ETag and version, hence the cache key;
2. a complete entry under that key is a hit: pinned, touched (LRU), returned;
3. otherwise the key's lock is taken (others wait), the entry looked up again (someone may have
   just finished it), stale temp files removed, and the object downloaded into ``tmp/``,
   verified (size, ETag, sha256), fsynced and renamed into ``objects/``;
4. extraction, when asked, is a second entry derived from the first, produced the same way;
5. the cache is trimmed to its bound (LRU, skipping entries any process has pinned).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable

from ..errors import ArchiveError, ChecksumMismatchError, StorageError, ValidationError
from . import FetchResult, ProgressFn
from . import archive as arc
from .cache import Cache, entry_key, tree_size
from .config import Settings
from .diagnose import checksum_error, storage_error
from .local import check_local, materialize
from .progress import Throttle
from .transfer import ChecksumFailure, Hasher, ObjectInfo, Opener, download, start_writeback
from .uri import ParsedURI, parse, redact

log = logging.getLogger("synapse_runtime.storage")

_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


def fetch(uri: str, *, cache_dir: str | os.PathLike[str] | None = None, extract: bool = False,
          sha256: str | None = None, progress: ProgressFn | None = None,
          dest: str | os.PathLike[str] | None = None) -> FetchResult:
    if sha256 is not None:
        sha256 = sha256.strip().lower().removeprefix("sha256:")
        if not _SHA256.match(sha256):
            raise ValidationError(f"sha256 must be 64 hex digits, got {sha256[:80]!r}",
                                  hint="give the checkpoint's SHA-256 as printed by `sha256sum` "
                                       "(SYNAPSE_CHECKPOINT_SHA256), optionally prefixed with 'sha256:'",
                                  details={"uri": redact(uri), "field": "sha256"})
    st = Settings.from_env()
    p = parse(uri)
    if p.scheme == "file":
        result = _fetch_local(p, st, cache_dir, extract, sha256, progress)
    else:
        cache = Cache.open(cache_dir, st)
        if p.scheme == "s3" and p.is_prefix:
            result = _fetch_prefix(p, st, cache, progress)
        elif p.scheme == "s3":
            result = _fetch_s3_object(p, st, cache, extract, sha256, progress)
        else:
            result = _fetch_http(p, st, cache, extract, sha256, progress)
    if dest is not None:
        try:
            final = materialize(result.path, Path(dest))
        except OSError as exc:
            raise StorageError(f"cannot copy {redact(uri)} to {dest}: {exc.strerror or exc}",
                               hint="check that the destination is writable and has space",
                               details={"uri": redact(uri), "cause": "disk"}) from exc
        result = FetchResult(path=final, uri=result.uri, bytes=result.bytes, total=result.total, cached=result.cached, via=result.via)
    return result


# ---- local ------------------------------------------------------------------------------------
def _fetch_local(p: ParsedURI, st: Settings, cache_dir: Any, extract: bool, sha256: str | None,
                 progress: ProgressFn | None) -> FetchResult:
    assert p.path is not None
    path = check_local(p.path, p.raw)
    if sha256 is not None:
        if not path.is_file():
            raise ValidationError(f"sha256 given for {p.raw}, which is a directory")
        actual = _sha256_file(path)
        if actual != sha256:
            raise checksum_error(p.raw, "local", "sha256", sha256, actual)
    size = tree_size(path)
    if extract:
        cache = Cache.open(cache_dir, st)
        stat = path.stat()
        key = entry_key(kind="local", path=str(path.resolve()), size=stat.st_size, mtime=stat.st_mtime_ns, ino=stat.st_ino)
        meta = _ensure_extracted(cache, st, key, path, p.raw, p.basename, sha256)
        result = FetchResult(Path(meta["path"]), redact(p.raw), 0, int(meta["bytes"]), True, "local")
    else:
        result = FetchResult(path, p.raw, 0, size, True, "local")
    if progress:
        progress(p.raw, result.total or 0, result.total, True)
    return result


# ---- S3 objects ------------------------------------------------------------------------------
def _fetch_s3_object(p: ParsedURI, st: Settings, cache: Cache, extract: bool, sha256: str | None,
                     progress: ProgressFn | None) -> FetchResult:
    from .awsenv import env_endpoint
    from .fastpath import FastPath
    from .s3 import guess_part_size, info_from_headers

    s3 = None
    fast, refusal = FastPath.from_env()
    info = None
    endpoint = fast.endpoint if fast else ""
    if fast is not None:
        try:
            status, headers = fast.head(p.bucket, p.key, st.connect_timeout)
            if status == 200:
                info = info_from_headers(headers)
            else:  # let boto3 produce the precise error (and handle redirects)
                fast, refusal = None, _fell_back(p, f"HEAD answered {status}")
        except OSError as exc:
            if _tls_refused(exc):
                raise storage_error(exc, p.raw, endpoint) from None  # boto3 would refuse it too
            fast, refusal = None, _fell_back(p, f"HEAD failed: {type(exc).__name__}")
    if info is None:
        s3 = _client(st)
        endpoint = s3.endpoint
        client = s3
        try:  # a 503 SlowDown or a reset on the HEAD is as transient as on a GET
            info = _with_retries(st, lambda: client.head(p.bucket, p.key))
        except Exception as exc:  # noqa: BLE001
            raise _s3_error(exc, p, s3) from None
    endpoint_id = (env_endpoint() or endpoint or "aws").rstrip("/")
    key = entry_key(kind="object", endpoint=endpoint_id, bucket=p.bucket, key=p.key, etag=info.etag,
                    version=info.version_id, size=info.size)

    def make_opener() -> tuple[Opener, Any]:
        nonlocal s3
        assert info is not None
        if fast is not None:
            from . import http

            if info.parts and info.md5_etag:
                _fast_part_size(fast, p, st, info)
                if not info.part_size:
                    info.part_size = guess_part_size(info.size, info.parts)
            return http.opener(fast.url(p.bucket, p.key), st, info, None, signer=fast.object_headers,
                               connect=fast.connection), None
        if s3 is None:
            s3 = _client(st)
        s3.confirm_part_size(p.bucket, p.key, info)
        return s3.opener(p.bucket, p.key, info), s3

    def on_error(exc: BaseException) -> StorageError:
        return _s3_error(exc, p, s3) if s3 is not None else storage_error(exc, p.raw, endpoint)

    via = fast.name if fast is not None else "boto3"
    return _fetch_object(cache, st, p, endpoint, info, key, make_opener, on_error, extract, sha256, progress,
                         via=via, fallback=refusal)


def _fell_back(p: ParsedURI, why: str) -> str:
    """The fast path gave a request to boto3: never silently (a log line; ``via``/``fallback`` in result and entry)."""
    log.warning("%s: the fast path handed over to boto3 (%s)", redact(p.raw), why)
    return why


def _tls_refused(exc: BaseException) -> bool:
    import ssl

    return isinstance(exc, ssl.SSLCertVerificationError)


def _fast_part_size(fast: Any, p: ParsedURI, st: Settings, info: ObjectInfo) -> None:
    """HEAD ?partNumber=1 through the fast path: the part size, when the server supports it."""
    try:
        status, h = fast.head(p.bucket, p.key, st.connect_timeout, part_number=1)
    except OSError:
        return
    try:
        count = int(h.get("x-amz-mp-parts-count", "0") or 0)
        length = int(h.get("content-length", "0") or 0)
    except ValueError:
        return
    # S3 and MinIO answer 206, moto 200; either way the parts count and one part's length must fit
    if status in (200, 206) and count == info.parts and length and (count - 1) * length < info.size <= count * length:
        info.part_size, info.part_size_confirmed = length, True


def _with_retries(st: Settings, call: Callable[[], Any]) -> Any:
    """``call()``, retried like a transfer (``SYNAPSE_FETCH_RETRIES``, backoff) on transient errors."""
    from .retry import backoff_delay, is_retryable

    attempt = 0
    while True:
        try:
            return call()
        except Exception as exc:  # noqa: BLE001
            attempt += 1
            if attempt > st.retries or not is_retryable(exc):
                raise
            time.sleep(backoff_delay(attempt, st.backoff, st.backoff_max))


def _client(st: Settings) -> Any:
    from .s3 import S3

    try:
        return S3(st)
    except Exception as exc:  # noqa: BLE001 - e.g. a broken profile or credentials file
        raise StorageError(f"cannot configure the S3 client: {type(exc).__name__}: {exc}",
                           hint="check AWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE and AWS_* variables",
                           details={"cause": "config"}) from None


def _s3_error(exc: BaseException, p: ParsedURI, s3: Any) -> StorageError:
    from .retry import status_of

    status, code = status_of(exc)
    missing = None
    err = None
    if status == 404 and code in ("404", "NotFound"):
        missing = s3.bucket_missing(p.bucket)
        if not missing and p.key and s3.is_prefix(p.bucket, p.key):
            err = storage_error(exc, p.raw, s3.endpoint)
            err.hint = f"s3://{p.bucket}/{p.key.rstrip('/')}/ is a prefix (a directory of objects): add a trailing '/'"
            return err
    return storage_error(exc, p.raw, s3.endpoint, bucket_missing=missing)


# ---- HTTP(S) ----------------------------------------------------------------------------------
def _fetch_http(p: ParsedURI, st: Settings, cache: Cache, extract: bool, sha256: str | None,
                progress: ProgressFn | None) -> FetchResult:
    from . import http

    endpoint = http.endpoint_of(p.raw)
    try:
        info, first = _with_retries(st, lambda: http.first_get(p.raw, st))
    except Exception as exc:  # noqa: BLE001
        raise storage_error(exc, p.raw, endpoint) from None
    url_id = p.raw.split("?", 1)[0]
    version: Any = info.etag or (info.last_modified and f"{info.last_modified}/{info.size}")
    if not version:
        version = f"uncacheable/{time.time_ns()}"  # no validator: never reuse, LRU removes it
    key = entry_key(kind="http", url=url_id, version=version, size=info.size)
    holder = {"first": first}

    def make_opener() -> tuple[Opener, Any]:
        return http.opener(p.raw, st, info, holder.pop("first", None)), None

    def on_error(exc: BaseException) -> StorageError:
        return storage_error(exc, p.raw, endpoint)

    def drop_first() -> None:
        http.close_quietly(holder.pop("first", None))

    try:
        return _fetch_object(cache, st, p, endpoint, info, key, make_opener, on_error, extract, sha256,
                             progress, before_wait=drop_first, via="http")
    finally:
        drop_first()


# ---- the common object path -------------------------------------------------------------------
def _fetch_object(cache: Cache, st: Settings, p: ParsedURI, endpoint: str, info: ObjectInfo, key: str,
                  make_opener: Callable[[], tuple[Opener, Any]], on_error: Callable[[BaseException], StorageError],
                  extract: bool, sha256: str | None, progress: ProgressFn | None,
                  before_wait: Callable[[], None] | None = None, via: str = "http",
                  fallback: str | None = None) -> FetchResult:
    """``via``: which path serves (``fast path``, ``boto3``, ``http``); ``fallback``: why not the fast path."""
    throttle = Throttle(progress, redact(p.raw), info.size, via=via)
    xkey = entry_key(kind="extract", base=key) if extract else None
    meta = cache.lookup(xkey or key)
    if meta is not None:
        if before_wait:
            before_wait()
        _check_hit_sha256(cache, st, p, endpoint, key, xkey, meta, sha256, make_opener, on_error)
        throttle.final(0, True)
        return FetchResult(Path(meta["path"]), redact(p.raw), 0, int(meta.get("total", meta["bytes"])), True, via)
    transferred = 0
    obj = cache.lookup(key)
    if obj is None:
        obj, transferred = _produce_object(cache, st, p, endpoint, info, key, make_opener, on_error, sha256,
                                           throttle, before_wait, {"via": via, "fallback": fallback})
    elif sha256 is not None:
        _check_hit_sha256(cache, st, p, endpoint, key, None, obj, sha256, make_opener, on_error)
    if xkey is not None:
        meta = _ensure_extracted(cache, st, key, Path(obj["path"]), p.raw, p.basename, sha256, xkey=xkey,
                                 archive_sha256=obj.get("sha256"))
    else:
        meta = obj
    cache.evict()
    throttle.final(transferred, transferred == 0)
    return FetchResult(Path(meta["path"]), redact(p.raw), transferred, info.size, transferred == 0, via)


def _produce_object(cache: Cache, st: Settings, p: ParsedURI, endpoint: str, info: ObjectInfo, key: str,
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
                _check_hit_sha256(cache, st, p, endpoint, key, None, meta, sha256, make_opener, on_error)
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
            target = work / p.basename
            fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            try:
                hasher = Hasher(info, sha256 is not None, st.verify_etag)
                try:
                    download(fd, info, opener, st, hasher=hasher, on_bytes=on_bytes)
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
                        log.warning("%s: multipart ETag not verifiable (part size unknown); %s", redact(p.raw),
                                    "sha256 verified" if sha256 else "two downloads agree")
                    os.fsync(fd)
                except ChecksumFailure as exc:
                    # A sha256 mismatch on bytes whose ETag matched is the object itself: no point in
                    # a second download.  Without a verified ETag it may be corruption in transit.
                    if attempt == 1 and (exc.what != "sha256" or not hasher.etag_verified):
                        if exc.what == "multipart ETag" and not exc.certain:
                            uncertain = exc.actual
                        log.warning("%s: %s; downloading again", redact(p.raw), exc)
                        shutil.rmtree(work, ignore_errors=True)
                        continue
                    raise checksum_error(p.raw, endpoint, exc.what, exc.expected, exc.actual) from None
                except StorageError:
                    raise
                except Exception as exc:  # noqa: BLE001
                    raise on_error(exc) from None
            finally:
                os.close(fd)
            meta = cache.commit(key, work, {"name": p.basename, "bytes": info.size, "total": info.size,
                                            "uri": redact(p.raw), "endpoint": endpoint, "etag": info.etag,
                                            "sha256": hasher.sha256_hex(), "kind": "object",
                                            "verified": hasher.method or "size",
                                            **{k: v for k, v in (route or {}).items() if v}})
            return meta, done
        raise AssertionError("unreachable")
    finally:
        _clean_tmp(cache, key)
        lock.release()


def _clean_tmp(cache: Cache, key: str) -> None:
    """Remove this key's temp items; only called while holding the key's lock (rules: Cache.clean_key_tmp)."""
    cache.clean_key_tmp(key)


def _check_hit_sha256(cache: Cache, st: Settings, p: ParsedURI, endpoint: str, key: str, xkey: str | None,
                      meta: dict[str, Any], sha256: str | None, make_opener: Callable[[], tuple[Opener, Any]],
                      on_error: Callable[[BaseException], StorageError]) -> None:
    """An expected sha256 holds for cached content too: compare with the recorded or computed digest."""
    if sha256 is None:
        return
    recorded = meta.get("archive_sha256" if xkey else "sha256")
    if recorded is None:
        obj = cache.lookup(key)
        if obj is None:  # the archive was evicted after extraction: fetch it again to verify
            throttle = Throttle(None, p.raw, None)
            obj, _ = _produce_object(cache, st, p, endpoint, _info_from_meta(meta), key, make_opener, on_error,
                                     sha256, throttle, None)
        recorded = obj.get("sha256") or _sha256_file(Path(obj["path"]))
        cache.update_meta(key, sha256=recorded)
        if xkey:
            cache.update_meta(xkey, archive_sha256=recorded)
    if recorded != sha256:
        raise checksum_error(p.raw, endpoint, "sha256", sha256, recorded)


def _info_from_meta(meta: dict[str, Any]) -> ObjectInfo:
    return ObjectInfo(size=int(meta.get("total", 0)), etag=meta.get("etag"))


def _ensure_extracted(cache: Cache, st: Settings, base_key: str, archive_path: Path, uri: str, name: str,
                      sha256: str | None, *, xkey: str | None = None, archive_sha256: str | None = None) -> dict[str, Any]:
    xkey = xkey or entry_key(kind="extract", base=base_key)
    meta = cache.lookup(xkey)
    if meta is not None:
        return meta
    with cache.lock(xkey):
        meta = cache.lookup(xkey)
        if meta is not None:
            return meta
        work = cache.tmp_path(xkey, "x")
        work.mkdir()
        stem = arc.archive_stem(name)
        try:
            written = arc.extract(archive_path, work / stem, max_bytes=st.max_extract_bytes,
                                  max_files=st.max_extract_files, label=redact(uri), max_ratio=st.max_extract_ratio)
            from .cache import fsync_tree

            fsync_tree(work / stem)
            return cache.commit(xkey, work, {"name": stem, "bytes": written, "total": archive_path.stat().st_size,
                                             "uri": redact(uri), "kind": "extract",
                                             "archive_sha256": archive_sha256 or sha256})
        except ArchiveError:
            raise
        except OSError as exc:
            raise ArchiveError(f"cannot extract {redact(uri)}: {exc.strerror or exc}",
                               hint="free space in SYNAPSE_CACHE_DIR", details={"cause": "disk"}) from exc
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(4 << 20):
            h.update(block)
    return h.hexdigest()


# ---- S3 prefixes ------------------------------------------------------------------------------
def _fetch_prefix(p: ParsedURI, st: Settings, cache: Cache, progress: ProgressFn | None) -> FetchResult:
    """Every object below the prefix, layout kept; revalidated with one LIST (paged per 1000 keys)."""
    from .fastpath import FastPath

    fast, refusal = FastPath.from_env()
    s3: Any = None
    objects: list[dict[str, Any]] = []
    if fast is not None:
        try:
            objects = [o for o in fast.list_objects(p.bucket, p.key, st) if not str(o["Key"]).endswith("/")]
        except Exception as exc:  # noqa: BLE001 - boto3 below gives the precise error
            if _tls_refused(exc):
                raise storage_error(exc, p.raw, fast.endpoint) from None  # boto3 would refuse it too
            fast, refusal = None, _fell_back(p, f"ListObjectsV2 failed: {type(exc).__name__}")
    if fast is None:
        s3 = _client(st)
        try:
            objects = [o for o in s3.list_prefix(p.bucket, p.key) if not o["Key"].endswith("/")]
        except Exception as exc:  # noqa: BLE001
            raise _s3_error(exc, p, s3) from None
    endpoint = fast.endpoint if fast is not None else s3.endpoint
    if not objects:
        raise StorageError(f"cannot fetch {p.raw} from {endpoint}: no objects under this prefix (NoSuchKey)",
                           hint="check the prefix; for a single object drop the trailing '/'",
                           details={"uri": p.raw, "endpoint": endpoint, "cause": "NoSuchKey"})
    files: list[tuple[str, dict[str, Any]]] = []
    for o in objects:
        rel = o["Key"][len(p.key):]
        try:
            rel = arc._safe_name(rel, p.raw)  # noqa: SLF001 - same rule as archives
        except ArchiveError as exc:
            raise StorageError(f"cannot fetch {p.raw}: object key {o['Key']!r} would leave the target directory",
                               hint="rename the object", details={"uri": p.raw, "cause": "unsafe key"}) from exc
        if rel:
            files.append((rel, o))
    listing = hashlib.sha256("\n".join(f"{r}\t{o.get('ETag')}\t{o['Size']}" for r, o in files).encode()).hexdigest()
    from .awsenv import env_endpoint

    via = fast.name if fast is not None else "boto3"
    key = entry_key(kind="prefix", endpoint=(env_endpoint() or endpoint).rstrip("/"), bucket=p.bucket,
                    prefix=p.key, listing=listing)
    total = sum(int(o["Size"]) for _, o in files)
    throttle = Throttle(progress, redact(p.raw), total, via=via)
    meta = cache.lookup(key)
    if meta is not None:
        throttle.final(0, True)
        return FetchResult(Path(meta["path"]), redact(p.raw), 0, total, True, via)
    with cache.lock(key):
        meta = cache.lookup(key)
        if meta is not None:
            throttle.final(0, True)
            return FetchResult(Path(meta["path"]), redact(p.raw), 0, total, True, via)
        cache.clean_stale()
        work = cache.tmp_path(key, "prefix")
        tree = work / p.basename
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
            if info.parts and info.md5_etag:
                if fast is not None:
                    _fast_part_size(fast, ParsedURI("s3", p.raw, p.bucket, okey), st, info)
                    if not info.part_size:
                        from .s3 import guess_part_size

                        info.part_size = guess_part_size(info.size, info.parts)
                else:
                    s3.confirm_part_size(p.bucket, okey, info)
            if fast is not None:
                from . import http

                opener = http.opener(fast.url(p.bucket, okey), st, info, None, signer=fast.object_headers,
                                     connect=fast.connection)
            else:
                opener = s3.opener(p.bucket, okey, info)
            target = tree / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            try:
                hasher = Hasher(info, False, st.verify_etag)
                download(fd, info, opener, st, strategy="single", hasher=hasher, on_bytes=on_bytes, cancel=cancel)
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
            _run_all(one, files, st.concurrency, cancel)
            from .cache import fsync_tree

            fsync_tree(tree)
            meta = cache.commit(key, work, {"name": p.basename, "bytes": total, "total": total, "uri": p.raw,
                                            "endpoint": endpoint, "kind": "prefix", "objects": len(files),
                                            "verified": verified, "via": via,
                                            **({"fallback": refusal} if refusal else {})})
        except ChecksumFailure as exc:
            raise checksum_error(p.raw, endpoint, exc.what, exc.expected, exc.actual) from None
        except StorageError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise (_s3_error(exc, p, s3) if s3 is not None else storage_error(exc, p.raw, endpoint)) from None
        finally:
            shutil.rmtree(work, ignore_errors=True)
    cache.evict()
    throttle.final(done[0], False)
    return FetchResult(Path(meta["path"]), redact(p.raw), done[0], total, False, via)


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

