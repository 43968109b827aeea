"""Presigned HTTP(S) URLs, file:// URIs and plain paths."""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
from pathlib import Path

import pytest

from synapse_runtime.errors import ChecksumMismatchError, StorageError
from synapse_runtime.storage import fetch

from .conftest import cache_state


def test_presigned_url(s3, bucket: str, cache_dir: Path, proxy) -> None:
    data = os.urandom(2 * 1024 * 1024 + 3)
    s3.put_object(Bucket=bucket, Key="models/m.safetensors", Body=data)
    url = _presign(proxy.endpoint, bucket, "models/m.safetensors")  # signed for the proxy's host (Garage checks)
    calls = []
    r = fetch(url, cache_dir=cache_dir, progress=lambda *a: calls.append(a))
    assert r.path.name == "m.safetensors" and r.path.read_bytes() == data and not r.cached
    assert "Signature" not in r.uri and "AKIA" not in r.uri and all("Signature" not in c[0] for c in calls)  # signatures are secrets
    proxy.reset_counts()
    hit = fetch(url, cache_dir=cache_dir)
    assert hit.cached and hit.path == r.path and proxy.count("GET") == 1 and proxy.count("HEAD") == 0


def test_presigned_url_sha256(s3, bucket: str, cache_dir: Path) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"payload")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"})
    with pytest.raises(ChecksumMismatchError):
        fetch(url, cache_dir=cache_dir, sha256="a" * 64)
    assert cache_state(cache_dir) == ([], [])
    assert fetch(url, cache_dir=cache_dir, sha256=hashlib.sha256(b"payload").hexdigest()).path.read_bytes() == b"payload"


def _presign(endpoint: str, bucket: str, key: str) -> str:
    import boto3

    client = boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=os.environ["AWS_REGION"])
    return client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=600)


class _Denied(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = b"<?xml version='1.0'?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
        self.send_response(403)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_presigned_denied_message_has_no_signature(cache_dir: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Denied)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = (f"http://127.0.0.1:{server.server_port}/bucket/model.bin?X-Amz-Algorithm=AWS4-HMAC-SHA256"
               "&X-Amz-Credential=AKIASECRETID%2F20260101&X-Amz-Signature=deadbeefsecret")
        with pytest.raises(StorageError) as ei:
            fetch(url, cache_dir=cache_dir)
    finally:
        server.shutdown()
    msg = str(ei.value) + repr(ei.value.details)
    assert "access denied" in msg and "expired" in msg and f"127.0.0.1:{server.server_port}/bucket/model.bin" in msg
    assert "deadbeefsecret" not in msg and "AKIASECRETID" not in msg


def test_http_not_found(cache_dir: Path, s3, bucket: str) -> None:
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "missing"})
    with pytest.raises(StorageError) as ei:
        fetch(url, cache_dir=cache_dir)
    assert "NoSuchKey" in str(ei.value) and "Signature" not in str(ei.value)


def test_plain_path_and_file_uri(tmp_path: Path, cache_dir: Path) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(b"weights")
    r = fetch(str(f), cache_dir=cache_dir)
    assert r.path == f and r.cached and r.bytes == 0 and r.total == 7
    r = fetch(f"file://{f}", cache_dir=cache_dir)
    assert r.path == f
    assert not cache_dir.exists()  # nothing copied, no cache needed
    d = tmp_path / "dir"
    d.mkdir()
    (d / "a").write_text("a")
    assert fetch(str(d)).path == d
    out = fetch(str(f), dest=tmp_path / "copy" / "w2.bin")
    assert out.path.read_bytes() == b"weights" and out.path != f
    with pytest.raises(ChecksumMismatchError):
        fetch(str(f), sha256="b" * 64)
    assert fetch(str(f), sha256=hashlib.sha256(b"weights").hexdigest()).path == f


def test_missing_local_path(tmp_path: Path) -> None:
    with pytest.raises(StorageError) as ei:
        fetch(str(tmp_path / "nope"))
    assert "no such file" in str(ei.value) and str(tmp_path / "nope") in str(ei.value)


def test_unsupported_scheme() -> None:
    with pytest.raises(StorageError) as ei:
        fetch("gs://bucket/key")
    assert "gs://" in str(ei.value)


class _Any200(http.server.BaseHTTPRequestHandler):
    """Answers 200 with the same bytes for any path: a server that does not care what was asked."""

    body = b"not-a-model"

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.send_header("ETag", '"v1"')
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def any200():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Any200)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("segment,expect", [
    ("..%2F..%2F..%2F..%2Fescaped.bin", ".._.._.._.._escaped.bin"),
    ("..%5C..%5Cescaped.bin", ".._.._escaped.bin"),
    ("%2E%2E", "object"),
    ("meta.json", "_meta.json"),  # would be overwritten by the entry's own meta.json
    ("w%00.bin", "w_.bin"),
])
def test_url_cannot_name_a_file_outside_the_cache(any200: str, tmp_path: Path, segment: str, expect: str) -> None:
    """Issue 12 item 1: a percent-encoded separator in the last segment must not leave the cache."""
    cache = tmp_path / "c" / "a" / "b"
    r = fetch(f"{any200}/m/{segment}", cache_dir=cache)
    assert r.path.name == expect and r.path.read_bytes() == _Any200.body
    assert r.path.resolve().parent.parent == (cache / "objects").resolve()  # objects/<key>/<name>
    outside = sorted(p for p in tmp_path.rglob("*") if cache not in p.parents and p != cache and p not in cache.parents)
    assert outside == []


def test_archive_url_cannot_name_a_directory_outside_the_cache(tmp_path: Path) -> None:
    """The extracted tree's name comes from the URL too (``..%2F..%2Fx.zip`` -> ``x`` one level up)."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("w.txt", b"w")

    class Zip(_Any200):
        body = buf.getvalue()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Zip)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    cache = tmp_path / "c"
    try:
        for seg in ("..%2F..%2F..%2Fx.zip", "...zip", "....tar.gz"):
            r = fetch(f"http://127.0.0.1:{server.server_port}/{seg}", cache_dir=cache, extract=True)
            assert (r.path / "w.txt").read_bytes() == b"w"
            assert r.path.resolve().parent.parent == (cache / "objects").resolve(), r.path
    finally:
        server.shutdown()
        server.server_close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]
