"""Which failures are worth another try, and how long to wait before it.

Transient: connection resets and refusals, timeouts (including a stalled body), truncated bodies,
HTTP 5xx, 429 and S3's SlowDown/Throttling/RequestTimeout.  Everything else (403, 404, 412, a full
disk, a checksum mismatch, a TLS certificate not trusted, a redirect from https to http) fails at once: retrying cannot help and only delays the error.
"""

from __future__ import annotations

import http.client
import random
import socket
import ssl

RETRYABLE_CODES = {
    "SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "RequestTimeoutException",
    "InternalError", "ServiceUnavailable", "RequestLimitExceeded", "TooManyRequests", "500", "502",
    "503", "504", "429", "BadGateway", "GatewayTimeout",
}


class DiskError(Exception):
    """A local write failed (full disk, permissions): never retried."""


class HTTPStatusError(Exception):
    """A non-success status from the plain HTTP client, with S3's error code when the body had one."""

    def __init__(self, status: int, code: str, message: str = "", headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status} {code}".strip())
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


class TruncatedBody(Exception):
    """The server closed the body before Content-Length bytes arrived."""


def status_of(exc: BaseException) -> tuple[int | None, str]:
    """(HTTP status, error code) of a botocore ClientError or our HTTPStatusError, else (None, '')."""
    if isinstance(exc, HTTPStatusError):
        return exc.status, exc.code
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        err = response.get("Error") or {}
        meta = response.get("ResponseMetadata") or {}
        return meta.get("HTTPStatusCode"), str(err.get("Code") or "")
    return None, ""


def is_retryable(exc: BaseException) -> bool:
    name, module = type(exc).__name__, type(exc).__module__
    if isinstance(exc, (DiskError, ssl.SSLCertVerificationError)) or name == "InsecureRedirect" or (
            name == "SSLError" and module.startswith("botocore")):
        return False  # a certificate we do not trust, or a redirect we refuse, stays so on every try
    status, code = status_of(exc)
    if status is not None or code:
        return (status is not None and (status >= 500 or status == 429)) or code in RETRYABLE_CODES
    if isinstance(exc, (TruncatedBody, http.client.HTTPException, socket.timeout, ConnectionError, TimeoutError)):
        return True
    module = type(exc).__module__
    if module.startswith(("botocore", "urllib3")):
        # botocore.exceptions: ConnectionError family, ReadTimeoutError, IncompleteReadError,
        # ResponseStreamingError, HTTPClientError; urllib3: ProtocolError, ReadTimeoutError, ...
        name = type(exc).__name__
        return any(word in name for word in ("Connection", "Timeout", "Incomplete", "Streaming", "HTTPClient", "Protocol"))
    if isinstance(exc, OSError):
        return True  # socket-level errors (EHOSTUNREACH, ENETUNREACH, ...); disk errors are DiskError
    return False


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with full jitter (attempt 1, 2, ...): spreads retries of many pods apart."""
    return random.uniform(0, min(cap, base * (2 ** (attempt - 1))))
