"""Turning low-level failures into StorageErrors that say what failed, where, why and what to do.

Every message names the (redacted) URI, the endpoint and a cause; never a credential or a
presigned URL's query string.  ``details`` carries the same facts for the error event.
"""

from __future__ import annotations

from ..errors import ChecksumMismatchError, StorageError
from .retry import DiskError, HTTPStatusError, status_of
from .uri import redact

_DENIED = {"AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch",
           "AllAccessDisabled", "InvalidToken", "ExpiredToken", "AccountProblem"}

HINT_CREDENTIALS = ("check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, "
                    "AWS_SHARED_CREDENTIALS_FILE) and that the bucket policy allows this principal")


def storage_error(exc: BaseException, uri: str, endpoint: str, *, action: str = "fetch",
                  bucket_missing: bool | None = None) -> StorageError:
    """Map ``exc`` (botocore, urllib3, socket, HTTPStatusError, DiskError) to a StorageError."""
    if isinstance(exc, StorageError):
        return exc
    safe_uri = redact(uri)
    status, code = status_of(exc)
    presigned = "?" in uri and "x-amz-" in uri.lower()
    if isinstance(exc, DiskError):
        cause, hint, kind = str(exc), "free space in SYNAPSE_CACHE_DIR or lower SYNAPSE_CACHE_MAX_BYTES", "disk"
    elif _is_tls_failure(exc):
        cause = f"TLS verification failed ({_short(exc)})"
        hint = ("trust the server's CA with AWS_CA_BUNDLE (or REQUESTS_CA_BUNDLE), a PEM file; "
                "check that the endpoint's certificate names its host")
        kind = "tls"
    elif type(exc).__name__ == "InsecureRedirect":
        cause = f"the server redirected to plain http ({_short(exc)})"
        hint, kind = "use the https URL the server means; a redirect from https to http is never followed", "redirect"
    elif code in ("NoSuchBucket",) or bucket_missing:
        cause = "the bucket does not exist (NoSuchBucket)"
        hint, kind = "check the bucket name and that AWS_ENDPOINT_URL_S3/AWS_ENDPOINT_URL points at the right server", "NoSuchBucket"
    elif code in ("NoSuchKey", "404", "NotFound") or status == 404:
        cause = "no such object (NoSuchKey)"
        hint = "check the key; a directory of objects needs a trailing '/' (s3://bucket/prefix/)"
        kind = "NoSuchKey"
    elif code in _DENIED or status == 403:
        cause = f"access denied ({code or 'AccessDenied'})"
        hint = ("the presigned URL may have expired or been altered; ask the backend for a new one" if presigned
                else HINT_CREDENTIALS)
        kind = "AccessDenied"
    elif code in ("PreconditionFailed", "412") or status == 412:
        cause = "the object changed while it was being downloaded (PreconditionFailed)"
        hint, kind = "retry once the writer has finished", "changed"
    elif status is not None:
        cause = f"the server answered HTTP {status} {code if code != str(status) else ''}".rstrip()
        hint, kind = "retry later; if it persists check the server's logs", "server"
    elif _is_unreachable(exc):
        cause = f"the endpoint is unreachable ({_short(exc)})"
        hint = "check AWS_ENDPOINT_URL_S3/AWS_ENDPOINT_URL, DNS and network policies" if not presigned else \
            "check DNS and network policies for the URL's host"
        kind = "unreachable"
    elif "timeout" in type(exc).__name__.lower() or isinstance(exc, TimeoutError):
        cause = f"the connection timed out or stalled ({_short(exc)})"
        hint, kind = "retry; raise SYNAPSE_S3_READ_TIMEOUT or SYNAPSE_FETCH_RETRIES on slow links", "timeout"
    else:
        cause = f"{type(exc).__name__}: {_short(exc)}"
        hint, kind = "retry; raise SYNAPSE_FETCH_RETRIES if the network is flaky", "other"
    verb = {"fetch": "cannot fetch", "upload": "cannot upload to"}.get(action, action)
    return StorageError(f"{verb} {safe_uri} from {endpoint}: {cause}", hint=hint,
                        details={"uri": safe_uri, "endpoint": endpoint, "cause": kind})


def checksum_error(uri: str, endpoint: str, what: str, expected: str, actual: str) -> ChecksumMismatchError:
    safe_uri = redact(uri)
    hint = ("check the expected sha256 (SYNAPSE_CHECKPOINT_SHA256, or the sha256 passed to fetch/download_model)" if what == "sha256"
            else "the bytes received differ from what the server stored; retry")
    return ChecksumMismatchError(
        f"cannot fetch {safe_uri} from {endpoint}: checksum mismatch ({what}: expected {expected}, got {actual}); "
        "nothing was kept", hint=hint,
        details={"uri": safe_uri, "endpoint": endpoint, "cause": "checksum mismatch", "what": what})


def _is_tls_failure(exc: BaseException) -> bool:
    """A certificate the client does not trust (ours: ssl's error; boto3's: botocore.exceptions.SSLError)."""
    import ssl

    seen: BaseException | None = exc
    for _ in range(5):  # botocore wraps urllib3's error, which wraps ssl's
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError) or type(seen).__name__ == "SSLError" or (
                isinstance(seen, ssl.SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(seen)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _is_unreachable(exc: BaseException) -> bool:
    name = type(exc).__name__
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "NewConnectionError", "ProxyConnectionError"):
        return True
    if isinstance(exc, (ConnectionRefusedError,)) or (isinstance(exc, OSError) and exc.errno in (101, 110, 111, 113, -2, -3, -5)):
        return True
    import socket

    return isinstance(exc, socket.gaierror)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    # botocore messages may embed full URLs (with presigned queries): cut queries out
    out = []
    for word in text.split():
        out.append(redact(word) if "://" in word else word)
    text = " ".join(out)
    return text[:300]


__all__ = ["storage_error", "checksum_error", "HTTPStatusError"]
