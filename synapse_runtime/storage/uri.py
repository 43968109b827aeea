"""Parsing of the URIs the contract accepts, and redaction of URIs for messages.

Kept free of boto3 so that ``synapse_runtime.storage`` imports in a few milliseconds.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from ..errors import InvalidURIError
from .names import safe_name


@dataclass(frozen=True)
class ParsedURI:
    scheme: str  # "s3", "http", "https", "file"
    raw: str
    bucket: str = ""
    key: str = ""  # object key or prefix (prefix ends with "/" or is "")
    path: Path | None = None  # local path for file:// and plain paths

    @property
    def is_prefix(self) -> bool:
        return self.scheme == "s3" and (self.key == "" or self.key.endswith("/"))

    @property
    def basename(self) -> str:
        """The name a fetched file or directory gets in the cache (loaders often dispatch on it).

        Decoding comes first and :func:`safe_name` last, so ``..%2F..%2Fx`` is one harmless name
        (``.._.._x``), never a path: whatever the URL, the name cannot leave ``objects/<key>/``.
        """
        if self.scheme == "s3":
            name = self.key.rstrip("/").rsplit("/", 1)[-1] or self.bucket
        else:
            name = unquote(urlsplit(self.raw).path.rstrip("/").rsplit("/", 1)[-1])
        return safe_name(name)


def parse(uri: str) -> ParsedURI:
    """Split a URI into its parts; raises InvalidURIError (exit 2) for URIs that cannot name anything."""
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidURIError("empty storage URI", hint="give s3://bucket/key, https://..., file://... or a path",
                           details={"uri": "", "cause": "bad URI"})
    uri = uri.strip()
    lower = uri.lower()
    if lower.startswith("s3://"):
        rest = uri[5:]
        bucket, _, key = rest.partition("/")
        if not bucket:
            raise InvalidURIError(f"{uri}: no bucket in S3 URI", hint="use s3://bucket/key or s3://bucket/prefix/",
                               details={"uri": uri, "cause": "bad URI"})
        return ParsedURI("s3", uri, bucket=bucket, key=key)
    if lower.startswith(("http://", "https://")):
        return ParsedURI(lower.split(":", 1)[0], uri)
    if lower.startswith("file://"):
        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost"):
            raise InvalidURIError(f"{uri}: file:// URIs must be local", hint="use file:///absolute/path",
                               details={"uri": uri, "cause": "bad URI"})
        return ParsedURI("file", uri, path=Path(unquote(parts.path)))
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", uri):
        scheme = uri.split("://", 1)[0]
        raise InvalidURIError(f"{scheme}:// URIs are not supported ({redact(uri)})",
                           hint="use s3://, https://, http://, file:// or a local path",
                           details={"uri": redact(uri), "cause": "bad URI"})
    return ParsedURI("file", uri, path=Path(os.path.expanduser(uri)))


def redact(uri: str) -> str:
    """A URI safe for messages and events: no query string (presigned signatures are secrets), no userinfo."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "<unparseable URI>"
    if not parts.scheme or parts.scheme.lower() in ("file", "s3"):
        return uri.split("?", 1)[0] if parts.scheme.lower() != "s3" else uri
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    query = "<redacted>" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
