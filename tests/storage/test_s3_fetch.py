"""Fetching from a real S3 server (moto over HTTP): objects, prefixes, cache, verification, errors."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from synapse_runtime.errors import ChecksumMismatchError, StorageError, ValidationError
from synapse_runtime.storage import FetchResult, fetch

from .conftest import cache_state


def test_single_object(s3, bucket: str, cache_dir: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 11)
    s3.put_object(Bucket=bucket, Key="models/ckpt.pt", Body=data)
    calls = []
    r = fetch(f"s3://{bucket}/models/ckpt.pt", cache_dir=cache_dir, progress=lambda *a: calls.append(a))
    assert isinstance(r, FetchResult)
    assert r.path.name == "ckpt.pt" and r.path.read_bytes() == data
    assert (r.bytes, r.total, r.cached) == (len(data), len(data), False)
    assert calls[-1] == (f"s3://{bucket}/models/ckpt.pt", len(data), len(data), False)
    assert cache_state(cache_dir)[1] == []  # no temp left


def test_empty_object(s3, bucket: str, cache_dir: Path) -> None:
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    r = fetch(f"s3://{bucket}/empty", cache_dir=cache_dir)
    assert r.path.read_bytes() == b"" and r.total == 0


def test_prefix_keeps_layout(s3, bucket: str, cache_dir: Path) -> None:
    files = {"run1/config.json": b"{}", "run1/weights/a.bin": os.urandom(1000), "run1/weights/b.bin": os.urandom(70000)}
    for k, v in files.items():
        s3.put_object(Bucket=bucket, Key=k, Body=v)
    s3.put_object(Bucket=bucket, Key="run1x/other", Body=b"not below the prefix")
    r = fetch(f"s3://{bucket}/run1/", cache_dir=cache_dir)
    assert r.path.is_dir() and r.path.name == "run1"
    got = {p.relative_to(r.path).as_posix(): p.read_bytes() for p in r.path.rglob("*") if p.is_file()}
    assert got == {k.removeprefix("run1/"): v for k, v in files.items()}
    assert r.total == sum(map(len, files.values())) and not r.cached
    again = fetch(f"s3://{bucket}/run1/", cache_dir=cache_dir)
    assert again.cached and again.path == r.path and again.bytes == 0
    s3.put_object(Bucket=bucket, Key="run1/new.txt", Body=b"new")  # listing changed: new entry
    third = fetch(f"s3://{bucket}/run1/", cache_dir=cache_dir)
    assert not third.cached and (third.path / "new.txt").read_bytes() == b"new"


def test_multipart_object_verified(s3, bucket: str, cache_dir: Path, monkeypatch, tmp_path: Path) -> None:
    from boto3.s3.transfer import TransferConfig

    data = os.urandom(11 * 1024 * 1024)
    src = tmp_path / "big"
    src.write_bytes(data)
    s3.upload_file(str(src), bucket, "big.bin", Config=TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20))
    etag = s3.head_object(Bucket=bucket, Key="big.bin")["ETag"]
    assert etag.endswith('-3"')
    monkeypatch.setenv("SYNAPSE_S3_PART_SIZE", str(5 << 20))
    monkeypatch.setenv("SYNAPSE_S3_STRATEGY", "parallel")
    r = fetch(f"s3://{bucket}/big.bin", cache_dir=cache_dir)
    assert r.path.read_bytes() == data


def test_parallel_strategy_same_bytes(s3, bucket: str, cache_dir: Path, monkeypatch) -> None:
    data = os.urandom(2 * 1024 * 1024 + 5)
    s3.put_object(Bucket=bucket, Key="p.bin", Body=data)
    monkeypatch.setenv("SYNAPSE_S3_STRATEGY", "parallel")
    monkeypatch.setenv("SYNAPSE_S3_PART_SIZE", str(256 * 1024))
    monkeypatch.setenv("SYNAPSE_S3_CHUNK_SIZE", str(64 * 1024))
    r = fetch(f"s3://{bucket}/p.bin", cache_dir=cache_dir)
    assert hashlib.sha256(r.path.read_bytes()).digest() == hashlib.sha256(data).digest()


def test_auto_strategy_takes_ranges_through_the_s3_api_on_every_server(s3, bucket: str, cache_dir: Path,
                                                                         monkeypatch, proxy) -> None:
    """``auto`` fetches an object of 4 parts or more through the S3 API in parallel ranges, whatever
    the server is (no server is recognised by name: moto gets ranges too, unless a test or an
    operator sets ``single``)."""
    data = os.urandom(4 * 1024 * 1024)
    s3.put_object(Bucket=bucket, Key="big.bin", Body=data)
    monkeypatch.setenv("SYNAPSE_S3_PART_SIZE", str(256 * 1024))  # 16 parts
    r = fetch(f"s3://{bucket}/big.bin", cache_dir=cache_dir)
    assert r.path.read_bytes() == data
    assert proxy.count("GET") == 16  # one ranged GET per part


def test_single_strategy_keeps_one_stream(s3, bucket: str, cache_dir: Path, monkeypatch, proxy) -> None:
    """What a server that reads the whole object per ranged GET is given: SYNAPSE_S3_STRATEGY=single."""
    data = os.urandom(4 * 1024 * 1024)
    s3.put_object(Bucket=bucket, Key="big.bin", Body=data)
    monkeypatch.setenv("SYNAPSE_S3_PART_SIZE", str(256 * 1024))
    monkeypatch.setenv("SYNAPSE_S3_STRATEGY", "single")
    r = fetch(f"s3://{bucket}/big.bin", cache_dir=cache_dir)
    assert r.path.read_bytes() == data
    assert proxy.count("GET") == 1


def test_cache_hit_is_one_head(s3, bucket: str, cache_dir: Path, proxy) -> None:
    s3.put_object(Bucket=bucket, Key="m.bin", Body=b"x" * 100_000)
    first = fetch(f"s3://{bucket}/m.bin", cache_dir=cache_dir)
    assert proxy.count("GET") == 1
    proxy.reset_counts()
    t0 = time.perf_counter()
    hit = fetch(f"s3://{bucket}/m.bin", cache_dir=cache_dir)
    elapsed = time.perf_counter() - t0
    assert hit.cached and hit.bytes == 0 and hit.path == first.path
    assert proxy.requests == [("HEAD", f"/{bucket}/m.bin")]
    if os.environ.get("SYNAPSE_S3_FAST_PATH") != "0":  # boto3's client creation alone takes ~0.35 s
        assert elapsed < 0.1, elapsed


def test_cache_hit_without_fast_path_is_one_head(s3, bucket: str, cache_dir: Path, proxy, monkeypatch) -> None:
    monkeypatch.setenv("SYNAPSE_S3_FAST_PATH", "0")  # the boto3 path must also revalidate with one HEAD
    s3.put_object(Bucket=bucket, Key="m.bin", Body=b"y" * 1000)
    fetch(f"s3://{bucket}/m.bin", cache_dir=cache_dir)
    proxy.reset_counts()
    assert fetch(f"s3://{bucket}/m.bin", cache_dir=cache_dir).cached
    assert [m for m, _ in proxy.requests] == ["HEAD"]


def test_etag_change_invalidates(s3, bucket: str, cache_dir: Path) -> None:
    s3.put_object(Bucket=bucket, Key="m.bin", Body=b"old" * 1000)
    old = fetch(f"s3://{bucket}/m.bin", cache_dir=cache_dir)
    s3.put_object(Bucket=bucket, Key="m.bin", Body=b"new" * 1000)
    new = fetch(f"s3://{bucket}/m.bin", cache_dir=cache_dir)
    assert not new.cached and new.path != old.path
    assert new.path.read_bytes() == b"new" * 1000
    assert old.path.read_bytes() == b"old" * 1000  # an entry in use is never rewritten in place


def test_dest_materializes(s3, bucket: str, cache_dir: Path, tmp_path: Path) -> None:
    s3.put_object(Bucket=bucket, Key="a/model.bin", Body=b"abc")
    out = tmp_path / "out"
    out.mkdir()
    r = fetch(f"s3://{bucket}/a/model.bin", cache_dir=cache_dir, dest=out)
    assert r.path == out / "model.bin" and r.path.read_bytes() == b"abc"
    r2 = fetch(f"s3://{bucket}/a/model.bin", cache_dir=cache_dir, dest=tmp_path / "named.bin")
    assert r2.path == tmp_path / "named.bin" and r2.cached and r2.path.read_bytes() == b"abc"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_sha256_ok_and_mismatch(s3, bucket: str, cache_dir: Path, tmp_path: Path) -> None:
    data = os.urandom(50_000)
    s3.put_object(Bucket=bucket, Key="s.bin", Body=data)
    good = hashlib.sha256(data).hexdigest()
    bad = "0" * 64
    with pytest.raises(ChecksumMismatchError) as ei:
        fetch(f"s3://{bucket}/s.bin", cache_dir=cache_dir, sha256=bad, dest=tmp_path / "d")
    msg = str(ei.value)
    assert "checksum mismatch" in msg and f"s3://{bucket}/s.bin" in msg and bad in msg and good in msg
    assert ei.value.exit_code == 4
    assert cache_state(cache_dir) == ([], []) and not (tmp_path / "d").exists()
    assert fetch(f"s3://{bucket}/s.bin", cache_dir=cache_dir, sha256=good).path.read_bytes() == data
    with pytest.raises(ChecksumMismatchError):  # a cached entry is checked as well
        fetch(f"s3://{bucket}/s.bin", cache_dir=cache_dir, sha256=bad)
    with pytest.raises(ValidationError):
        fetch(f"s3://{bucket}/s.bin", cache_dir=cache_dir, sha256="xyz")


def test_sha256_on_hit_computed_when_not_recorded(s3, bucket: str, cache_dir: Path) -> None:
    data = b"q" * 1234
    s3.put_object(Bucket=bucket, Key="q", Body=data)
    fetch(f"s3://{bucket}/q", cache_dir=cache_dir)  # no sha256 recorded
    with pytest.raises(ChecksumMismatchError):
        fetch(f"s3://{bucket}/q", cache_dir=cache_dir, sha256="1" * 64)
    assert fetch(f"s3://{bucket}/q", cache_dir=cache_dir, sha256=hashlib.sha256(data).hexdigest()).cached


def test_missing_bucket(aws_env, cache_dir: Path) -> None:
    with pytest.raises(StorageError) as ei:
        fetch("s3://no-such-bucket-xyz/k", cache_dir=cache_dir)
    msg = str(ei.value)
    assert "s3://no-such-bucket-xyz/k" in msg and aws_env in msg and "NoSuchBucket" in msg
    assert ei.value.exit_code == 4 and "fake-secret" not in msg and ei.value.hint


def test_missing_key(bucket: str, aws_env, cache_dir: Path, s3) -> None:
    with pytest.raises(StorageError) as ei:
        fetch(f"s3://{bucket}/nope.bin", cache_dir=cache_dir)
    assert "NoSuchKey" in str(ei.value) and aws_env in str(ei.value)
    s3.put_object(Bucket=bucket, Key="dir/a", Body=b"a")
    with pytest.raises(StorageError) as ei:
        fetch(f"s3://{bucket}/dir", cache_dir=cache_dir)
    assert "trailing '/'" in str(ei.value)
    with pytest.raises(StorageError) as ei:
        fetch(f"s3://{bucket}/empty-prefix/", cache_dir=cache_dir)
    assert "no objects" in str(ei.value)
    assert cache_state(cache_dir)[0] == []


def test_missing_bucket_prefix(aws_env, cache_dir: Path) -> None:
    with pytest.raises(StorageError) as ei:
        fetch("s3://no-such-bucket-xyz/p/", cache_dir=cache_dir)
    assert "NoSuchBucket" in str(ei.value)


def test_unreachable_endpoint(aws_env, cache_dir: Path, monkeypatch) -> None:
    from .netutil import free_port

    endpoint = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("SYNAPSE_FETCH_RETRIES", "1")
    t0 = time.monotonic()
    with pytest.raises(StorageError) as ei:
        fetch("s3://bucket/key", cache_dir=cache_dir)
    msg = str(ei.value)
    assert "unreachable" in msg and endpoint in msg and "s3://bucket/key" in msg and "AWS_ENDPOINT_URL" in msg
    assert time.monotonic() - t0 < 10


@pytest.mark.moto_only  # Garage has no ACLs and no anonymous S3 access
def test_anonymous_when_no_credentials(s3, bucket: str, cache_dir: Path, monkeypatch, aws_env) -> None:
    """No credentials anywhere: unsigned requests; public objects load, private ones are AccessDenied."""
    s3.put_object(Bucket=bucket, Key="public.txt", Body=b"public", ACL="public-read")
    s3.put_object(Bucket=bucket, Key="private.txt", Body=b"private")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    from synapse_runtime.storage.config import StorageSettings
    from synapse_runtime.storage.s3 import S3

    assert S3(StorageSettings.of()).anonymous
    assert fetch(f"s3://{bucket}/public.txt", cache_dir=cache_dir).path.read_bytes() == b"public"
    with pytest.raises(StorageError) as ei:
        fetch(f"s3://{bucket}/private.txt", cache_dir=cache_dir)
    msg = str(ei.value)
    assert "access denied" in msg and f"s3://{bucket}/private.txt" in msg and aws_env in msg
    assert "AWS_ACCESS_KEY_ID" in msg  # the hint says what to fix


def test_credentials_from_a_mounted_credentials_file(s3, bucket: str, cache_dir: Path, monkeypatch,
                                                     tmp_path: Path) -> None:
    """No key in env, a credentials file mounted (AWS_SHARED_CREDENTIALS_FILE, a profile): the private object
    loads, so the requests were signed with the file's keys (anonymous ones are refused, see above)."""
    s3.put_object(Bucket=bucket, Key="private.txt", Body=b"private")
    key, secret = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]  # Garage checks them
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    creds = tmp_path / "secret-inputs" / "credentials"
    creds.parent.mkdir()
    creds.write_text(f"[default]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n"
                     f"[ml]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    assert fetch(f"s3://{bucket}/private.txt", cache_dir=cache_dir).path.read_bytes() == b"private"
    monkeypatch.setenv("AWS_PROFILE", "ml")
    r = fetch(f"s3://{bucket}/private.txt", cache_dir=tmp_path / "cache2")
    assert r.path.read_bytes() == b"private"


def test_cache_dir_from_env_and_unwritable(s3, bucket: str, tmp_path: Path, monkeypatch) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"k")
    monkeypatch.setenv("SYNAPSE_CACHE_DIR", str(tmp_path / "envcache"))
    assert str(fetch(f"s3://{bucket}/k").path).startswith(str(tmp_path / "envcache"))
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a directory cannot be created below a file, even as root
    with pytest.raises(StorageError) as ei:
        fetch(f"s3://{bucket}/k", cache_dir=blocker / "c")
    assert "SYNAPSE_CACHE_DIR" in str(ei.value)


def test_storage_import_is_light() -> None:
    import subprocess
    import sys

    code = "import sys, synapse_runtime.storage; print('boto3' in sys.modules, 'botocore' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False False"
