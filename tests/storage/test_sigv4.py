"""The fast path's SigV4 signer against botocore's, for every request shape the fast path sends, and each
shape sent to Garage (which verifies signatures strictly; moto accepts anything, so only these catch a
signing mistake).  Each of these breaks of sigv4.py fails here: query pairs left unsorted, header values
unstripped or headers unsorted, ``/`` left unencoded in ListObjectsV2 queries.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import pytest

from synapse_runtime.storage import fetch
from synapse_runtime.storage.sigv4 import encode_query, object_url, sign

NOW = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
#: keys with every character class S3 clients get wrong: space + = & % ~ * ( ) and non-ASCII
ODD_KEYS = ["dir/a b+c.bin", "x=1&y=2%3F.bin", "tilde~star*(paren).bin", "ünïcødé/日本語 ファイル.bin",
            "semi;colon,comma'quote!.bin", "dir//double/./dot..bin"]
ENDPOINT = "http://127.0.0.1:9000"


def _botocore_auth(method: str, url: str, headers: dict[str, str], token: str | None, monkeypatch) -> str:
    """Authorization botocore's S3SigV4Auth computes for the same request at the same instant."""
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: NOW.replace(tzinfo=None))
    # botocore adds X-Amz-Date, the token and Authorization itself; Host comes from the URL
    given = {k: v for k, v in headers.items()
             if k.lower() not in ("x-amz-date", "x-amz-security-token", "authorization", "host")}
    req = AWSRequest(method=method, url=url, headers=given)
    botocore.auth.S3SigV4Auth(Credentials("AKID", "SECRET/KEY+x", token), "s3", "eu-west-1").add_auth(req)
    return req.headers["Authorization"]


def _ours(method: str, url: str, extra: dict[str, str], token: str | None) -> dict[str, str]:
    return sign(method, url, access_key="AKID", secret_key="SECRET/KEY+x", token=token, region="eu-west-1",
                now=NOW, extra=extra)


# The shapes the fast path sends (fastpath.py, http.py): extra headers as http.request adds them.
GET_HEADERS = {"Accept-Encoding": "identity", "User-Agent": "synapse-runtime", "Range": "bytes=5-1048580",
               "If-Match": '"0123abcd"', "x-amz-checksum-mode": "ENABLED"}
SHAPES = [
    ("HEAD", "", {"x-amz-checksum-mode": "ENABLED"}),
    ("HEAD", encode_query({"partNumber": "1"}), {"x-amz-checksum-mode": "ENABLED"}),
    ("GET", "", GET_HEADERS),
    ("GET", "", {**GET_HEADERS, "Range": "bytes=0-"}),
    ("GET", "", {"Accept-Encoding": "identity", "x-amz-meta-padded": "  two   spaces  "}),
]


@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzE//session+token=="], ids=["keys", "session-token"])
@pytest.mark.parametrize("key", ODD_KEYS)
@pytest.mark.parametrize("method,query,extra", SHAPES, ids=[f"{m}-{i}" for i, (m, _, _) in enumerate(SHAPES)])
def test_object_requests_match_botocore(method: str, query: str, extra: dict[str, str], key: str,
                                        token: str | None, monkeypatch) -> None:
    url = object_url(ENDPOINT, "my-bucket", key) + (f"?{query}" if query else "")
    ours = _ours(method, url, extra, token)
    assert ours["Authorization"] == _botocore_auth(method, url, ours, token, monkeypatch)


LIST_QUERIES = [
    {"list-type": "2", "prefix": "run1/weights/"},
    {"list-type": "2", "prefix": "a b+c=&%~*()/ü/", "delimiter": "/"},
    {"list-type": "2", "prefix": "p/", "max-keys": "2", "continuation-token": "1/Ab+cD=="},
    {"prefix": "z/", "list-type": "2", "delimiter": "/", "start-after": "z/a"},  # given out of order
]


@pytest.mark.parametrize("params", LIST_QUERIES, ids=range(len(LIST_QUERIES)))
def test_list_objects_v2_matches_botocore(params: dict[str, str], monkeypatch) -> None:
    url = f"{ENDPOINT}/my-bucket?{encode_query(params)}"
    headers = {"Accept-Encoding": "identity", "User-Agent": "synapse-runtime"}
    ours = _ours("GET", url, headers, "TOKEN")
    assert ours["Authorization"] == _botocore_auth("GET", url, ours, "TOKEN", monkeypatch)


def test_list_query_encodes_slash_and_sorts() -> None:
    """The canonical query as the server rebuilds it: sorted, '/' as %2F, space as %20 (never '+')."""
    q = encode_query({"prefix": "a b/c", "list-type": "2", "continuation-token": "x+y/z="})
    assert q == "continuation-token=x%2By%2Fz%3D&list-type=2&prefix=a%20b%2Fc"


# ---- against Garage: each shape accepted ---------------------------------------------------------

@pytest.fixture
def garage_env(garage_server, monkeypatch, tmp_path: Path):
    from .netutil import fake_aws_env

    fake_aws_env(monkeypatch, garage_server.endpoint, tmp_path, access=garage_server.access,
                 secret=garage_server.secret, read_timeout=5)
    monkeypatch.setenv("AWS_REGION", garage_server.region)
    import boto3

    client = boto3.session.Session().client("s3", endpoint_url=garage_server.endpoint, region_name=garage_server.region)
    bucket = f"sig-{os.urandom(6).hex()}"
    client.create_bucket(Bucket=bucket)
    return client, bucket


def test_garage_accepts_every_shape(garage_env, tmp_path: Path) -> None:
    """HEAD (+ ?partNumber=1), ranged GET with checksum mode, ListObjectsV2 pages with continuation tokens,
    for keys with odd characters, all through the fast path: Garage rejects any wrong signature."""
    from boto3.s3.transfer import TransferConfig

    from synapse_runtime.storage.config import StorageSettings
    from synapse_runtime.storage.fastpath import FastPath

    client, bucket = garage_env
    for i, key in enumerate(ODD_KEYS):
        client.put_object(Bucket=bucket, Key=f"odd/{key}", Body=f"{i}".encode() * 1000, ChecksumAlgorithm="CRC32")
    src = tmp_path / "mp"
    src.write_bytes(os.urandom(11 << 20))
    client.upload_file(str(src), bucket, "odd/multi part=1.bin",
                       Config=TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20))
    fast, refusal = FastPath.from_env()
    assert fast is not None, refusal
    st = StorageSettings.of()
    for key in ODD_KEYS:
        status, headers = fast.head(bucket, f"odd/{key}", 5)
        assert status == 200 and headers.get("x-amz-checksum-crc32"), (key, status)
    status, headers = fast.head(bucket, "odd/multi part=1.bin", 5, part_number=1)
    assert status in (200, 206) and int(headers["content-length"]) == 5 << 20
    listed = fast.list_objects(bucket, "odd/", st, page_size=2)  # 4 pages: continuation tokens signed
    assert sorted(o["Key"] for o in listed) == sorted([f"odd/{k}" for k in ODD_KEYS] + ["odd/multi part=1.bin"])
    os.environ["SYNAPSE_S3_PART_SIZE"] = str(1 << 20)
    os.environ["SYNAPSE_S3_STRATEGY"] = "parallel"  # ranged GETs with If-Match and checksum mode
    try:
        for key in ODD_KEYS[:3]:
            r = fetch(f"s3://{bucket}/odd/{key}", cache_dir=tmp_path / "c")
            assert r.via == "fast path"
        r = fetch(f"s3://{bucket}/odd/multi part=1.bin", cache_dir=tmp_path / "c")
        assert r.via == "fast path" and r.path.read_bytes() == src.read_bytes()
        r = fetch(f"s3://{bucket}/odd/", cache_dir=tmp_path / "c")
        assert r.via == "fast path" and len(list(r.path.rglob("*.bin"))) == len(ODD_KEYS) + 1
    finally:
        del os.environ["SYNAPSE_S3_PART_SIZE"], os.environ["SYNAPSE_S3_STRATEGY"]


def test_garage_accepts_a_session_token_signature(garage_env, monkeypatch) -> None:
    """A token is signed as botocore signs it. Garage (2.5) has no session tokens and ignores the
    ``x-amz-security-token`` header, but it checks the signature over every signed header, the token's
    included: so both our HEAD and boto3's must be a 200. A 403 for both (a token that broke the
    signature of each) would be the same status, and no proof of anything: the status is asserted."""
    from synapse_runtime.storage.fastpath import FastPath

    client, bucket = garage_env
    client.put_object(Bucket=bucket, Key="t", Body=b"t")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "FwoGZXIvYXdzE//session+token==")
    fast, _ = FastPath.from_env()
    assert fast is not None and fast.token
    status, _ = fast.head(bucket, "t", 5)
    import boto3

    boto = boto3.session.Session().client("s3", endpoint_url=fast.endpoint, region_name=fast.region)
    try:
        boto.head_object(Bucket=bucket, Key="t")
        boto_status = 200
    except Exception as exc:  # noqa: BLE001
        boto_status = exc.response["ResponseMetadata"]["HTTPStatusCode"]  # type: ignore[attr-defined]
    assert (status, boto_status) == (200, 200)
