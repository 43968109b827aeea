"""Plain HTTP(S) sources (presigned URLs) streamed with http.client: no extra dependency.

A presigned URL is signed for GET only, so revalidation cannot use HEAD: the first GET's headers
give size and ETag, and on a cache hit that response is closed before its body is read (one
request either way).  Ranges resume broken transfers; a server that ignores Range gets the
leading bytes skipped instead.
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
from typing import Callable
from urllib.parse import urljoin, urlsplit

from .config import StorageSettings
from .retry import HTTPStatusError, TruncatedBody
from .s3 import checksums_from_headers, info_from_headers
from .transfer import Body, ObjectInfo, Opener

_MAX_REDIRECTS = 5


class _Resp:
    """A streaming body over http.client that can skip a prefix the server did not range away."""

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse, skip: int = 0) -> None:
        self.conn = conn
        self.resp = resp
        self.skip = skip
        self.headers = {k.lower(): v for k, v in resp.getheaders()}

    def read(self, n: int) -> bytes:
        self._skip_prefix()
        return self.resp.read(n)

    def readinto(self, buf: memoryview) -> int:
        """Into the engine's own buffer: no bytes object per chunk (see transfer._run_segment)."""
        self._skip_prefix()
        return self.resp.readinto(buf)

    def _skip_prefix(self) -> None:
        while self.skip:
            dropped = self.resp.read(min(self.skip, 1 << 20))
            if not dropped:
                raise TruncatedBody("connection closed while skipping to the resume offset")
            self.skip -= len(dropped)

    def close(self) -> None:
        try:
            self.resp.close()
        finally:
            self.conn.close()

    def abort(self) -> None:
        """From another thread: wake a blocked read now (shutdown, not close: the fd stays owned)."""
        sock = self.conn.sock
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)


def endpoint_of(url: str) -> str:
    p = urlsplit(url)
    return f"{p.scheme}://{p.hostname}{':' + str(p.port) if p.port else ''}"


Signer = Callable[[str, str, dict[str, str]], dict[str, str]]
Connect = Callable[[str, float], http.client.HTTPConnection]


class InsecureRedirect(Exception):
    """An https URL redirected to plain http: refused (it would expose the request and the bytes)."""


def _connect(url: str, timeout: float) -> http.client.HTTPConnection:
    """Presigned URLs: the system's CAs, or AWS_CA_BUNDLE/REQUESTS_CA_BUNDLE when one is set."""
    p = urlsplit(url)
    if p.scheme == "https":
        from .awsenv import ca_bundle

        cafile = ca_bundle()
        ctx = ssl.create_default_context(cafile=cafile) if cafile else None
        return http.client.HTTPSConnection(p.hostname, p.port, timeout=timeout, context=ctx)
    return http.client.HTTPConnection(p.hostname, p.port, timeout=timeout)


def request(url: str, st: StorageSettings, start: int = 0, end: int | None = None, if_match: str | None = None,
            signer: Signer | None = None, connect: Connect | None = None, extra: dict[str, str] | None = None) -> _Resp:
    """GET ``url`` for [start, end); raises HTTPStatusError on failure.

    ``signer`` returns every header to send, signed (the fast path); presigned URLs carry their
    signature in the query.  Unsigned requests follow redirects, never from https to http; a signed
    request follows none (the signature names one host: boto3 handles S3's redirects).
    """
    for _ in range(_MAX_REDIRECTS + 1):
        p = urlsplit(url)
        if p.scheme not in ("http", "https") or not p.hostname:
            raise HTTPStatusError(400, "BadURL", "not an http(s) URL")
        conn = (connect or _connect)(url, st.connect_timeout)
        headers = {"Accept-Encoding": "identity", "User-Agent": "synapse-runtime", **(extra or {})}
        if start > 0 or end is not None:
            headers["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        if if_match:
            headers["If-Match"] = f'"{if_match}"'
        if signer is not None:
            headers = signer("GET", url, headers)
        try:
            conn.connect()
            conn.sock.settimeout(st.read_timeout)
            conn.request("GET", (p.path or "/") + (f"?{p.query}" if p.query else ""), headers=headers)
            resp = conn.getresponse()
        except BaseException:
            conn.close()
            raise
        if resp.status in (301, 302, 303, 307, 308) and resp.getheader("Location") and signer is None:
            target = urljoin(url, resp.getheader("Location"))
            conn.close()
            if p.scheme == "https" and urlsplit(target).scheme != "https":
                raise InsecureRedirect(f"refused a redirect from https to {urlsplit(target).scheme}")
            url = target
            continue
        if resp.status in (200, 206):
            skip = start if resp.status == 200 and start > 0 else 0
            return _Resp(conn, resp, skip)
        body = b""
        try:
            body = resp.read(16384)
        except (OSError, http.client.HTTPException):
            pass
        conn.close()
        m = re.search(rb"<Code>([^<]{1,64})</Code>", body)
        code = m.group(1).decode("ascii", "replace") if m else str(resp.status)
        raise HTTPStatusError(resp.status, code, headers={k.lower(): v for k, v in resp.getheaders()})
    raise HTTPStatusError(310, "TooManyRedirects")


def first_get(url: str, st: StorageSettings) -> tuple[ObjectInfo, _Resp]:
    """The first GET: its headers identify the version; its body is the transfer if not cached."""
    resp = request(url, st)
    info = info_from_headers(resp.headers)
    if info.size < 0:
        resp.close()
        raise HTTPStatusError(502, "NoContentLength", "the server sent no Content-Length")
    presigned_s3 = "x-amz-request-id" in resp.headers or "x-amz-id-2" in resp.headers or "x-amz-" in url.lower()
    info.md5_etag = info.md5_etag and presigned_s3  # other servers' ETags are opaque
    return info, resp


def opener(url: str, st: StorageSettings, info: ObjectInfo, first: _Resp | None,
           signer: Signer | None = None, connect: Connect | None = None) -> Opener:
    """Ranges of ``url``; the first call may reuse the already open first response."""
    pending = [first] if first is not None else []

    def open_range(start: int, end: int) -> Body:
        if pending and start == 0:
            resp = pending.pop()
            if end >= info.size:
                return resp
            resp.close()
        elif pending:
            pending.pop().close()
        resp = request(url, st, start, end if end < info.size else None,
                       if_match=None if info.weak_etag else info.etag, signer=signer, connect=connect)
        etag = (resp.headers.get("etag") or "").removeprefix("W/").strip('"') or None
        if info.etag and etag and etag != info.etag:
            resp.close()
            raise HTTPStatusError(412, "PreconditionFailed", "ETag changed during the download")
        if signer is not None and not info.checksums and start == 0 and end >= info.size:
            # A whole-object GET carries the stored checksum (asked for by the signer); the Hasher
            # decides what to compare only when the first bytes arrive, so it can still use it.
            info.checksums, info.checksum_type = checksums_from_headers(resp.headers)
        return resp

    return open_range


def close_quietly(resp: _Resp | None) -> None:
    if resp is not None:
        try:
            resp.close()
        except (OSError, http.client.HTTPException, socket.error):
            pass
