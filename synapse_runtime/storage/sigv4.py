"""SigV4 signing of body-less S3 requests with hmac: the fast path's signer (fastpath.py).

Importing boto3 and building a client costs ~0.6 s here, more than a whole cache hit; the fast path
signs its own HEAD, GET and ListObjectsV2 requests instead.  Canonicalization follows botocore's
``S3SigV4Auth`` exactly (tests/storage/test_sigv4.py compares the two for every request shape the
fast path sends, and runs each against Garage, which verifies signatures strictly):

* the query is parsed and re-encoded (RFC 3986 unreserved characters kept, ``/`` encoded), pairs
  sorted by name then value;
* every header sent is signed except ``User-Agent`` (as botocore's blacklist), names lower-cased and
  sorted, values stripped with inner runs of spaces collapsed;
* the path is signed as sent (S3 does not normalize or double-encode it).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
from urllib.parse import quote, unquote, urlsplit

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
#: headers botocore never signs (botocore.auth.SIGNED_HEADERS_BLACKLIST)
UNSIGNED_HEADERS = frozenset({"expect", "transfer-encoding", "user-agent", "x-amzn-trace-id"})


def _key(secret: str, date: str, region: str, service: str) -> bytes:
    k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def canonical_query(query: str) -> str:
    """``a=1&b=2`` form with each name and value decoded then encoded as SigV4 wants, sorted."""
    pairs = []
    for item in query.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        pairs.append((quote(unquote(name), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def encode_query(params: dict[str, str]) -> str:
    """A query string the server decodes to ``params`` and that is already in canonical form."""
    return canonical_query("&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params.items()))


def _value(v: str) -> str:
    return " ".join(v.split())


def sign(method: str, url: str, *, access_key: str, secret_key: str, token: str | None, region: str,
         now: datetime.datetime | None = None, service: str = "s3",
         extra: dict[str, str] | None = None) -> dict[str, str]:
    """Headers to send with a body-less request: ``extra`` plus Host, X-Amz-Date, X-Amz-Content-Sha256,
    the token and Authorization.  ``extra`` (any case) are signed too, but for User-Agent."""
    parts = urlsplit(url)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    out = dict(extra or {})
    out.update({"Host": parts.netloc, "X-Amz-Date": amz_date, "X-Amz-Content-Sha256": EMPTY_SHA256})
    if token:
        out["X-Amz-Security-Token"] = token
    signing = {k.lower(): _value(v) for k, v in out.items() if k.lower() not in UNSIGNED_HEADERS}
    names = sorted(signing)
    signed = ";".join(names)
    canonical_headers = "".join(f"{k}:{signing[k]}\n" for k in names)
    canonical = "\n".join([method, parts.path or "/", canonical_query(parts.query), canonical_headers, signed,
                           EMPTY_SHA256])
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    signature = hmac.new(_key(secret_key, date, region, service), to_sign.encode(), hashlib.sha256).hexdigest()
    out["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, "
                            f"Signature={signature}")
    return out


def object_url(endpoint: str, bucket: str, key: str) -> str:
    """Path-style URL, as used with custom endpoints (the key encoded as botocore encodes it)."""
    return f"{endpoint.rstrip('/')}/{quote(bucket, safe='')}/{quote(key, safe='/~')}"
