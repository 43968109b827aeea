"""Who serves an object: the fast path (our SigV4 signer), boto3, or a presigned HTTP(S) URL.

Each source revalidates the object with one request, names its cache key, and hands
``objects.fetch_object`` two things: how to open the object for ranged reads and how to word a
failure. The fast path serves only where ``awsenv.py`` says botocore would do the same; any other
case, and any answer it cannot use, goes to boto3, never silently (a log line, and ``via`` and
``fallback`` in the result and the cache entry).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from ..errors import StorageError
from .cache import Cache, entry_key
from .config import Settings
from .diagnose import storage_error
from .objects import fetch_object
from .progress import ProgressFn
from .result import FetchResult
from .transfer import ObjectInfo, Opener
from .uri import ParsedURI, redact

log = logging.getLogger("synapse_runtime.storage")


def fetch_s3_object(parsed: ParsedURI, settings: Settings, cache: Cache, extract: bool, sha256: str | None,
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
            status, headers = fast.head(parsed.bucket, parsed.key, settings.connect_timeout)
            if status == 200:
                info = info_from_headers(headers)
            else:  # let boto3 produce the precise error (and handle redirects)
                fast, refusal = None, fell_back(parsed, f"HEAD answered {status}")
        except OSError as exc:
            if tls_refused(exc):
                raise storage_error(exc, parsed.raw, endpoint) from None  # boto3 would refuse it too
            fast, refusal = None, fell_back(parsed, f"HEAD failed: {type(exc).__name__}")
    if info is None:
        s3 = boto3_client(settings)
        endpoint = s3.endpoint
        client = s3
        try:  # a 503 SlowDown or a reset on the HEAD is as transient as on a GET
            info = with_retries(settings, lambda: client.head(parsed.bucket, parsed.key))
        except Exception as exc:  # noqa: BLE001
            raise s3_error(exc, parsed, s3) from None
    endpoint_id = (env_endpoint() or endpoint or "aws").rstrip("/")
    key = entry_key(kind="object", endpoint=endpoint_id, bucket=parsed.bucket, key=parsed.key, etag=info.etag,
                    version=info.version_id, size=info.size)

    def make_opener() -> tuple[Opener, Any]:
        nonlocal s3
        assert info is not None
        if fast is not None:
            from . import http

            if info.parts and info.md5_etag:
                fast_part_size(fast, parsed, settings, info)
                if not info.part_size:
                    info.part_size = guess_part_size(info.size, info.parts)
            return http.opener(fast.url(parsed.bucket, parsed.key), settings, info, None, signer=fast.object_headers,
                               connect=fast.connection), None
        if s3 is None:
            s3 = boto3_client(settings)
        s3.confirm_part_size(parsed.bucket, parsed.key, info)
        return s3.opener(parsed.bucket, parsed.key, info), s3

    def on_error(exc: BaseException) -> StorageError:
        return s3_error(exc, parsed, s3) if s3 is not None else storage_error(exc, parsed.raw, endpoint)

    via = fast.name if fast is not None else "boto3"
    return fetch_object(cache, settings, parsed, endpoint, info, key, make_opener, on_error, extract, sha256, progress,
                         via=via, fallback=refusal)


def fell_back(parsed: ParsedURI, why: str) -> str:
    """The fast path gave a request to boto3: never silently (a log line; ``via``/``fallback`` in result and entry)."""
    log.warning("%s: the fast path handed over to boto3 (%s)", redact(parsed.raw), why)
    return why


def tls_refused(exc: BaseException) -> bool:
    import ssl

    return isinstance(exc, ssl.SSLCertVerificationError)


def fast_part_size(fast: Any, parsed: ParsedURI, settings: Settings, info: ObjectInfo) -> None:
    """HEAD ?partNumber=1 through the fast path: the part size, when the server supports it."""
    try:
        status, h = fast.head(parsed.bucket, parsed.key, settings.connect_timeout, part_number=1)
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


def with_retries(settings: Settings, call: Callable[[], Any]) -> Any:
    """``call()``, retried like a transfer (``SYNAPSE_FETCH_RETRIES``, backoff) on transient errors."""
    from .retry import backoff_delay, is_retryable

    attempt = 0
    while True:
        try:
            return call()
        except Exception as exc:  # noqa: BLE001
            attempt += 1
            if attempt > settings.retries or not is_retryable(exc):
                raise
            time.sleep(backoff_delay(attempt, settings.backoff, settings.backoff_max))


def boto3_client(settings: Settings) -> Any:
    from .s3 import S3

    try:
        return S3(settings)
    except Exception as exc:  # noqa: BLE001 - e.g. a broken profile or credentials file
        raise StorageError(f"cannot configure the S3 client: {type(exc).__name__}: {exc}",
                           hint="check AWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE and AWS_* variables",
                           details={"cause": "config"}) from None


def s3_error(exc: BaseException, parsed: ParsedURI, s3: Any) -> StorageError:
    from .retry import status_of

    status, code = status_of(exc)
    missing = None
    err = None
    if status == 404 and code in ("404", "NotFound"):
        missing = s3.bucket_missing(parsed.bucket)
        if not missing and parsed.key and s3.is_prefix(parsed.bucket, parsed.key):
            err = storage_error(exc, parsed.raw, s3.endpoint)
            err.hint = f"s3://{parsed.bucket}/{parsed.key.rstrip('/')}/ is a prefix (a directory of objects): add a trailing '/'"
            return err
    return storage_error(exc, parsed.raw, s3.endpoint, bucket_missing=missing)


def fetch_http(parsed: ParsedURI, settings: Settings, cache: Cache, extract: bool, sha256: str | None,
                progress: ProgressFn | None) -> FetchResult:
    from . import http

    endpoint = http.endpoint_of(parsed.raw)
    try:
        info, first = with_retries(settings, lambda: http.first_get(parsed.raw, settings))
    except Exception as exc:  # noqa: BLE001
        raise storage_error(exc, parsed.raw, endpoint) from None
    url_id = parsed.raw.split("?", 1)[0]
    version: Any = info.etag or (info.last_modified and f"{info.last_modified}/{info.size}")
    if not version:
        version = f"uncacheable/{time.time_ns()}"  # no validator: never reuse, LRU removes it
    key = entry_key(kind="http", url=url_id, version=version, size=info.size)
    unused_first_get = {"response": first}  # the revalidating GET's body, handed to the download once

    def make_opener() -> tuple[Opener, Any]:
        return http.opener(parsed.raw, settings, info, unused_first_get.pop("response", None)), None

    def on_error(exc: BaseException) -> StorageError:
        return storage_error(exc, parsed.raw, endpoint)

    def drop_first() -> None:
        http.close_quietly(unused_first_get.pop("response", None))

    try:
        return fetch_object(cache, settings, parsed, endpoint, info, key, make_opener, on_error, extract, sha256,
                             progress, before_wait=drop_first, via="http")
    finally:
        drop_first()
