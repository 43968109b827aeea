"""A boto3-free S3 path: SigV4 signing with hmac, requests with http.client.

Importing boto3 and building a client costs ~0.6 s on this machine; a cache hit must cost one
HEAD and well under 100 ms, and a cold fetch should not pay that either.  When credentials and a
custom endpoint come straight from the environment (the contract's common case) we sign HEAD, GET
and ListObjectsV2 ourselves (the signer is tested against botocore's).  Anything unusual
(profiles, web identity, AWS endpoints, redirects, errors) goes through boto3, which handles it all.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import http.client
import os
from urllib.parse import quote, urlsplit

from .. import knobs

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def env_endpoint() -> str | None:
    return (os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or "").strip() or None


def env_region() -> str:
    return (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1").strip()


def _key(secret: str, date: str, region: str, service: str) -> bytes:
    k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def sign(method: str, url: str, *, access_key: str, secret_key: str, token: str | None, region: str,
         now: datetime.datetime | None = None, service: str = "s3",
         extra: dict[str, str] | None = None) -> dict[str, str]:
    """Headers (Host, X-Amz-Date, X-Amz-Content-Sha256, Authorization, token) for a body-less request.

    ``extra``: more headers (lower-case names) to send and sign; S3 rejects unsigned ``x-amz-*``."""
    parts = urlsplit(url)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    host = parts.netloc
    headers = {"host": host, "x-amz-content-sha256": EMPTY_SHA256, "x-amz-date": amz_date}
    if token:
        headers["x-amz-security-token"] = token
    headers.update(extra or {})
    signed = ";".join(sorted(headers))
    canonical_headers = "".join(f"{k}:{headers[k].strip()}\n" for k in sorted(headers))
    pairs = [p.partition("=") for p in parts.query.split("&") if p]  # already URI-encoded by the caller
    query = "&".join(f"{k}={v}" for k, _, v in sorted(pairs, key=lambda kv: (kv[0], kv[2])))
    canonical = "\n".join([method, parts.path or "/", query, canonical_headers, signed, EMPTY_SHA256])
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    signature = hmac.new(_key(secret_key, date, region, service), to_sign.encode(), hashlib.sha256).hexdigest()
    out = {"Host": host, "X-Amz-Date": amz_date, "X-Amz-Content-Sha256": EMPTY_SHA256,
           "Authorization": f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"}
    if token:
        out["X-Amz-Security-Token"] = token
    out.update(extra or {})
    return out


def object_url(endpoint: str, bucket: str, key: str) -> str:
    """Path-style URL, as used with custom endpoints."""
    return f"{endpoint.rstrip('/')}/{quote(bucket, safe='')}/{quote(key, safe='/~')}"


_CHECKSUM_MODE = {"x-amz-checksum-mode": "ENABLED"}


class LightS3:
    """Env credentials + custom endpoint: sign requests ourselves and use http.client (no boto3)."""

    def __init__(self, endpoint: str, access: str, secret: str, token: str | None, region: str) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.access = access
        self.secret = secret
        self.token = token
        self.region = region

    @classmethod
    def from_env(cls) -> "LightS3 | None":
        """Only when AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and a custom endpoint are in the environment
        (botocore would pick those env credentials first too, whatever AWS_PROFILE says) and
        SYNAPSE_S3_FAST_PATH is not 0."""
        access = os.environ.get("AWS_ACCESS_KEY_ID", "").strip()
        secret = os.environ.get("AWS_SECRET_ACCESS_KEY", "").strip()
        endpoint = env_endpoint()
        if not (access and secret and endpoint) or not knobs.get("SYNAPSE_S3_FAST_PATH"):
            return None
        if urlsplit(endpoint).scheme not in ("http", "https"):
            return None
        return cls(endpoint, access, secret, os.environ.get("AWS_SESSION_TOKEN", "").strip() or None, env_region())

    def url(self, bucket: str, key: str = "", query: str = "") -> str:
        base = object_url(self.endpoint, bucket, key) if key else f"{self.endpoint}/{quote(bucket, safe='')}"
        return f"{base}?{query}" if query else base

    def headers(self, method: str, url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        return sign(method, url, access_key=self.access, secret_key=self.secret, token=self.token, region=self.region,
                    extra=extra)

    def object_headers(self, method: str, url: str) -> dict[str, str]:
        """For an object's HEAD/GET: also ask for its stored checksum (``x-amz-checksum-mode``)."""
        return self.headers(method, url, _CHECKSUM_MODE)

    def head(self, bucket: str, key: str, timeout: float, query: str = "") -> tuple[int, dict[str, str]]:
        """(status, lower-cased headers) of a signed HEAD."""
        url = self.url(bucket, key, query)
        parts = urlsplit(url)
        conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = conn_cls(parts.hostname, parts.port, timeout=timeout)
        try:
            conn.request("HEAD", parts.path + (f"?{parts.query}" if parts.query else ""),
                         headers=self.object_headers("HEAD", url))
            resp = conn.getresponse()
            resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()


def light_list(light: "LightS3", bucket: str, prefix: str, st: object) -> list[dict[str, object]]:
    """ListObjectsV2 pages (Key, Size, ETag) through the signed plain-HTTP path."""
    import xml.etree.ElementTree as ET

    from .http import request

    out: list[dict[str, object]] = []
    token = None
    while True:
        q = {"list-type": "2", "prefix": prefix}
        if token:
            q["continuation-token"] = token
        query = "&".join(f"{k}={quote(v, safe='-_.~')}" for k, v in sorted(q.items()))
        resp = request(light.url(bucket, "", query), st, signer=light.headers)  # type: ignore[arg-type]
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
