"""upload_dir round trip (multipart included) and the boto3-free SigV4 signer."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import pytest

from synapse_runtime.errors import StorageError
from synapse_runtime.storage import fetch, upload_dir


def test_upload_dir_round_trip(s3, bucket: str, tmp_path: Path, cache_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("SYNAPSE_S3_PART_SIZE", str(5 * 1024 * 1024))  # S3's minimum part size
    src = tmp_path / "out"
    (src / "ckpt").mkdir(parents=True)
    files = {"result.json": b"{}", "ckpt/big.bin": os.urandom(11 * 1024 * 1024), "ckpt/small.txt": b"s"}
    for rel, data in files.items():
        (src / rel).write_bytes(data)
    calls = []
    n = upload_dir(src, f"s3://{bucket}/jobs/1", progress=lambda *a: calls.append(a))
    assert n == sum(map(len, files.values())) and calls[-1][1] == n
    keys = {o["Key"]: o for o in s3.list_objects_v2(Bucket=bucket, Prefix="jobs/1/")["Contents"]}
    assert set(keys) == {f"jobs/1/{rel}" for rel in files}
    assert keys["jobs/1/ckpt/big.bin"]["ETag"].strip('"').endswith("-3")  # multipart
    back = fetch(f"s3://{bucket}/jobs/1/", cache_dir=cache_dir)
    for rel, data in files.items():
        assert (back.path / rel).read_bytes() == data


def test_upload_to_missing_bucket(aws_env, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(StorageError) as ei:
        upload_dir(tmp_path, "s3://no-such-bucket-up/prefix/")
    assert "NoSuchBucket" in str(ei.value) and "s3://no-such-bucket-up/prefix/" in str(ei.value) and aws_env in str(ei.value)


def test_sigv4_matches_botocore(monkeypatch) -> None:
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from synapse_runtime.storage.sigv4 import object_url, sign

    now = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    url = object_url("http://127.0.0.1:9000", "my-bucket", "dir/a b+c.bin")
    ours = sign("HEAD", url, access_key="AKID", secret_key="SECRET", token="TOK", region="eu-west-1", now=now)
    req = AWSRequest(method="HEAD", url=url, headers={"X-Amz-Content-SHA256": ours["X-Amz-Content-Sha256"]})
    auth = S3SigV4Auth(Credentials("AKID", "SECRET", "TOK"), "s3", "eu-west-1")
    import botocore.auth

    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: now.replace(tzinfo=None))
    auth.add_auth(req)
    assert req.headers["Authorization"] == ours["Authorization"]
