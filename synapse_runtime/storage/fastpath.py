"""The fast path: S3 without boto3 (our SigV4 signer, http.client), for the contract's common case.

Env credentials plus a custom endpoint (MinIO, Ceph, Garage, R2): HEAD, GET and ListObjectsV2 are
signed here and sent with http.client, saving boto3's ~0.6 s import and client creation.  It only
serves when it would do exactly what botocore does (awsenv.fast_path_refusal: same credentials,
region, CA file, no proxy); otherwise boto3 serves, and the fetch says so (``via``).
"""

from __future__ import annotations

import http.client
import ssl
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlsplit

from . import awsenv
from .sigv4 import encode_query, object_url, sign

_CHECKSUM_MODE = {"x-amz-checksum-mode": "ENABLED"}


class FastPath:
    """Signs and sends S3 requests for one endpoint with env credentials."""

    name = "fast path"

    def __init__(self, endpoint: str, access: str, secret: str, token: str | None, region: str,
                 cafile: str | None = None) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.access = access
        self.secret = secret
        self.token = token
        self.region = region
        self.cafile = cafile
        self._tls: ssl.SSLContext | None = None

    @classmethod
    def from_env(cls, enabled: bool = True) -> tuple["FastPath | None", str | None]:
        """(the fast path, None), or (None, why boto3 must serve instead); ``enabled``: SYNAPSE_S3_FAST_PATH."""
        import os

        endpoint = awsenv.env_endpoint()
        refusal = awsenv.fast_path_refusal(endpoint, enabled)
        if refusal is not None:
            return None, refusal
        assert endpoint is not None
        return cls(endpoint, os.environ["AWS_ACCESS_KEY_ID"].strip(), os.environ["AWS_SECRET_ACCESS_KEY"].strip(),
                   os.environ.get("AWS_SESSION_TOKEN", "").strip() or None, awsenv.env_region() or "us-east-1",
                   awsenv.ca_bundle()), None

    def tls_context(self) -> ssl.SSLContext:
        """Verification as botocore does it: the configured CA file, else botocore's default bundle."""
        if self._tls is None:
            cafile = self.cafile or awsenv.default_ca_bundle()
            self._tls = ssl.create_default_context(cafile=cafile)
        return self._tls

    def connection(self, url: str, timeout: float) -> http.client.HTTPConnection:
        parts = urlsplit(url)
        if parts.scheme == "https":
            return http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout, context=self.tls_context())
        return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)

    def url(self, bucket: str, key: str = "", query: str = "") -> str:
        base = object_url(self.endpoint, bucket, key) if key else f"{self.endpoint}/{bucket}"
        return f"{base}?{query}" if query else base

    def headers(self, method: str, url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        """Every header to send, signed (``extra`` included)."""
        return sign(method, url, access_key=self.access, secret_key=self.secret, token=self.token,
                    region=self.region, extra=extra)

    def object_headers(self, method: str, url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        """For an object's HEAD/GET: also ask for its stored checksum (``x-amz-checksum-mode``)."""
        return self.headers(method, url, {**(extra or {}), **_CHECKSUM_MODE})

    def head(self, bucket: str, key: str, timeout: float, part_number: int | None = None) -> tuple[int, dict[str, str]]:
        """(status, lower-cased headers) of a signed HEAD (``?partNumber=N`` when given)."""
        url = self.url(bucket, key, encode_query({"partNumber": str(part_number)}) if part_number else "")
        parts = urlsplit(url)
        conn = self.connection(url, timeout)
        try:
            conn.request("HEAD", parts.path + (f"?{parts.query}" if parts.query else ""),
                         headers=self.object_headers("HEAD", url))
            resp = conn.getresponse()
            resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()

    def list_objects(self, bucket: str, prefix: str, st: Any, page_size: int | None = None) -> list[dict[str, Any]]:
        """Every object under ``prefix`` (Key, Size, ETag), ListObjectsV2 page by page."""
        from .http import request

        out: list[dict[str, Any]] = []
        token = None
        while True:
            q = {"list-type": "2", "prefix": prefix}
            if page_size:
                q["max-keys"] = str(page_size)
            if token:
                q["continuation-token"] = token
            resp = request(self.url(bucket, "", encode_query(q)), st, signer=self.headers,
                           connect=self.connection)
            try:
                body = b""
                while chunk := resp.read(1 << 20):
                    body += chunk
            finally:
                resp.close()
            root = ET.fromstring(body)
            ns = root.tag.split("}")[0] + "}" if root.tag.startswith("{") else ""
            for c in root.findall(f"{ns}Contents"):
                out.append({"Key": c.findtext(f"{ns}Key") or "", "Size": int(c.findtext(f"{ns}Size") or 0),
                            "ETag": c.findtext(f"{ns}ETag") or ""})
            if (root.findtext(f"{ns}IsTruncated") or "false").lower() != "true":
                return out
            token = root.findtext(f"{ns}NextContinuationToken")
            if not token:
                return out
