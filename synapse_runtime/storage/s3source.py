"""One interface for whoever serves S3: the fast path (our signer over http.client) or boto3.

The object and prefix paths only ever talk to a ``Source``: revalidate an object (HEAD), list a
prefix, open an object for ranged reads (after learning a multipart object's part size), and word a
failure.  ``open_source`` picks the fast path where ``awsenv.py`` says botocore would do the same,
makes the first request through it, and hands over to boto3 when that request cannot be used;
never silently (a log line, and ``via``/``fallback`` in the result and the cache entry).
"""

from __future__ import annotations

import logging
import ssl
import time
from typing import Any, Callable, Protocol, TypeVar

from ..errors import StorageError
from .config import StorageSettings
from .diagnose import storage_error
from .transfer import ObjectInfo, Opener
from .uri import ParsedURI, redact

log = logging.getLogger("synapse_runtime.storage")

T = TypeVar("T")


class Source(Protocol):
    name: str  # what serves: "fast path" or "boto3" (the result's and the cache entry's ``via``)
    endpoint: str

    def revalidate(self, bucket: str, key: str) -> ObjectInfo: ...

    def listing(self, bucket: str, prefix: str) -> list[dict[str, Any]]: ...

    def ranges(self, bucket: str, key: str, info: ObjectInfo) -> Opener: ...

    def failure(self, exc: BaseException, parsed: ParsedURI) -> StorageError: ...


class HandOver(Exception):
    """The fast path got an answer it cannot use: boto3 makes the same request (and words its error)."""


class FastPathSource:
    """The fast path (``fastpath.FastPath``) as a Source."""

    name = "fast path"

    def __init__(self, fast: Any, settings: StorageSettings) -> None:
        self.fast = fast
        self.settings = settings
        self.endpoint: str = fast.endpoint

    def revalidate(self, bucket: str, key: str) -> ObjectInfo:
        from .s3 import info_from_headers

        status, headers = self._call("HEAD", lambda: self.fast.head(bucket, key, self.settings.connect_timeout))
        if status != 200:  # boto3 produces the precise error (and handles redirects)
            raise HandOver(f"HEAD answered {status}")
        return info_from_headers(headers)

    def listing(self, bucket: str, prefix: str) -> list[dict[str, Any]]:
        return self._call("ListObjectsV2", lambda: self.fast.list_objects(bucket, prefix, self.settings))

    def ranges(self, bucket: str, key: str, info: ObjectInfo) -> Opener:
        from . import http
        from .s3 import guess_part_size

        if info.parts and info.md5_etag:
            self._learn_part_size(bucket, key, info)
            if not info.part_size:
                info.part_size = guess_part_size(info.size, info.parts, self.settings.part_size)
        return http.opener(self.fast.url(bucket, key), self.settings, info, None, signer=self.fast.object_headers,
                           connect=self.fast.connection)

    def failure(self, exc: BaseException, parsed: ParsedURI) -> StorageError:
        return storage_error(exc, parsed.raw, self.endpoint)

    def _call(self, what: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except ssl.SSLCertVerificationError:
            raise  # boto3 would refuse the certificate too: the caller reports it as it is
        except Exception as exc:  # noqa: BLE001 - boto3 gives the precise error
            raise HandOver(f"{what} failed: {type(exc).__name__}") from exc

    def _learn_part_size(self, bucket: str, key: str, info: ObjectInfo) -> None:
        """HEAD ?partNumber=1: the part size, when the server supports it."""
        try:
            status, h = self.fast.head(bucket, key, self.settings.connect_timeout, part_number=1)
            count = int(h.get("x-amz-mp-parts-count", "0") or 0)
            length = int(h.get("content-length", "0") or 0)
        except (OSError, ValueError):
            return
        # servers answer 206 or 200; either way the parts count and one part's length must fit
        if status in (200, 206) and count == info.parts and length and (count - 1) * length < info.size <= count * length:
            info.part_size, info.part_size_confirmed = length, True


class Boto3Source:
    """boto3 (``s3.S3``) as a Source: profiles, IRSA, SSO, proxies, anything the fast path declines."""

    name = "boto3"

    def __init__(self, settings: StorageSettings) -> None:
        from .s3 import S3

        self.settings = settings
        try:
            self.s3 = S3(settings)
        except Exception as exc:  # noqa: BLE001 - e.g. a broken profile or credentials file
            raise StorageError(f"cannot configure the S3 client: {type(exc).__name__}: {exc}",
                               hint="check AWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE and AWS_* variables",
                               details={"cause": "config"}) from None
        self.endpoint: str = self.s3.endpoint

    def revalidate(self, bucket: str, key: str) -> ObjectInfo:
        # a 503 SlowDown or a reset on the HEAD is as transient as on a GET
        return with_retries(self.settings, lambda: self.s3.head(bucket, key))

    def listing(self, bucket: str, prefix: str) -> list[dict[str, Any]]:
        return list(self.s3.list_prefix(bucket, prefix))

    def ranges(self, bucket: str, key: str, info: ObjectInfo) -> Opener:
        self.s3.confirm_part_size(bucket, key, info)
        return self.s3.opener(bucket, key, info)

    def failure(self, exc: BaseException, parsed: ParsedURI) -> StorageError:
        from .retry import status_of

        status, code = status_of(exc)
        missing = None
        if status == 404 and code in ("404", "NotFound"):
            missing = self.s3.bucket_missing(parsed.bucket)
            if not missing and parsed.key and self.s3.is_prefix(parsed.bucket, parsed.key):
                err = storage_error(exc, parsed.raw, self.endpoint)
                err.hint = f"s3://{parsed.bucket}/{parsed.key.rstrip('/')}/ is a prefix (a directory of objects): add a trailing '/'"
                return err
        return storage_error(exc, parsed.raw, self.endpoint, bucket_missing=missing)


def open_source(settings: StorageSettings, parsed: ParsedURI, first: Callable[[Source], T]) -> tuple[Source, T, str | None]:
    """(the source that answered, ``first(source)``'s answer, why not the fast path or None).

    ``first`` is the request that revalidates (HEAD or LIST); its failure on boto3 is the fetch's
    error, worded by boto3's source.
    """
    from .fastpath import FastPath

    fast, refusal = FastPath.from_env(settings.fast_path)
    if fast is not None:
        source = FastPathSource(fast, settings)
        try:
            return source, first(source), None
        except ssl.SSLCertVerificationError as exc:
            raise storage_error(exc, parsed.raw, source.endpoint) from None
        except HandOver as exc:
            refusal = str(exc)
            log.warning("%s: the fast path handed over to boto3 (%s)", redact(parsed.raw), refusal)
    boto = Boto3Source(settings)
    try:
        return boto, first(boto), refusal
    except Exception as exc:  # noqa: BLE001
        raise boto.failure(exc, parsed) from None


def with_retries(settings: StorageSettings, call: Callable[[], T]) -> T:
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
