"""Who serves an object: an S3 source (fast path or boto3, ``s3source.py``) or a presigned HTTP(S) URL.

Each revalidates the object with one request, names its cache key, and hands
``objects.fetch_object`` an ``ObjectRequest`` (request.py) saying, besides what the caller asked for,
how to open the object for ranged reads and how to word a failure: all the object path needs to know
of its source.  Which S3 source serves, and why not the fast path when it does not, is in the result
and the cache entry (``via``, ``fallback``).
"""

from __future__ import annotations

import time
from typing import Any

from ..errors import StorageError
from .cache import Cache, entry_key
from .config import StorageSettings
from .diagnose import storage_error
from .objects import fetch_object
from .progress import ProgressFn
from .request import ObjectRequest
from .result import FetchResult
from .s3source import open_source, with_retries
from .transfer import Opener
from .uri import ParsedURI


def fetch_s3_object(parsed: ParsedURI, settings: StorageSettings, cache: Cache, extract: bool, sha256: str | None,
                     progress: ProgressFn | None) -> FetchResult:
    from .awsenv import env_endpoint

    source, info, fallback = open_source(settings, parsed, lambda src: src.revalidate(parsed.bucket, parsed.key))
    info.s3_api = True
    endpoint_id = (env_endpoint() or source.endpoint or "aws").rstrip("/")
    key = entry_key(kind="object", endpoint=endpoint_id, bucket=parsed.bucket, key=parsed.key, etag=info.etag,
                    version=info.version_id, size=info.size)

    def make_opener() -> Opener:
        return source.ranges(parsed.bucket, parsed.key, info)

    def on_error(exc: BaseException) -> StorageError:
        return source.failure(exc, parsed)

    return fetch_object(ObjectRequest(cache, settings, parsed, info, key, endpoint=source.endpoint,
                                      make_opener=make_opener, on_error=on_error, via=source.name, fallback=fallback,
                                      extract=extract, sha256=sha256, progress=progress))


def fetch_http(parsed: ParsedURI, settings: StorageSettings, cache: Cache, extract: bool, sha256: str | None,
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

    def make_opener() -> Opener:
        return http.opener(parsed.raw, settings, info, unused_first_get.pop("response", None))

    def on_error(exc: BaseException) -> StorageError:
        return storage_error(exc, parsed.raw, endpoint)

    def drop_first() -> None:
        http.close_quietly(unused_first_get.pop("response", None))

    try:
        return fetch_object(ObjectRequest(cache, settings, parsed, info, key, endpoint=endpoint,
                                          make_opener=make_opener, on_error=on_error, via="http",
                                          before_wait=drop_first, extract=extract, sha256=sha256, progress=progress))
    finally:
        drop_first()
