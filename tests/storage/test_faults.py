"""Injected faults through a TCP proxy: resets and stalls mid-body, retries with Range resume."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from synapse_runtime.errors import StorageError
from synapse_runtime.storage import fetch

from .conftest import cache_state
from .netutil import Fault

SIZE = 3 * 1024 * 1024 + 333


@pytest.fixture
def blob(s3, bucket: str) -> tuple[str, bytes]:
    data = os.urandom(SIZE)
    s3.put_object(Bucket=bucket, Key="f.bin", Body=data)
    return f"s3://{bucket}/f.bin", data


def _ranges(proxy) -> list[str]:
    return [path for m, path in proxy.requests if m == "GET"]


def test_reset_mid_body_resumes(blob, cache_dir: Path, proxy, monkeypatch) -> None:
    uri, data = blob
    monkeypatch.setenv("SYNAPSE_S3_FAST_PATH", "0")
    proxy.faults[:] = [Fault("reset", 1024 * 1024), Fault("reset", 1500 * 1024)]
    r = fetch(uri, cache_dir=cache_dir)
    assert r.path.read_bytes() == data
    assert proxy.count("GET") == 3  # the first try and two resumed ranges
    assert cache_state(cache_dir)[1] == []


def test_reset_with_parallel_ranges(blob, cache_dir: Path, proxy, monkeypatch) -> None:
    uri, data = blob
    monkeypatch.setenv("SYNAPSE_S3_STRATEGY", "parallel")
    monkeypatch.setenv("SYNAPSE_S3_PART_SIZE", str(512 * 1024))
    monkeypatch.setenv("SYNAPSE_S3_CONCURRENCY", "3")
    proxy.faults[:] = [Fault("reset", 100_000), Fault("reset", 300_000), None, Fault("reset", 10)]
    r = fetch(uri, cache_dir=cache_dir)
    assert r.path.read_bytes() == data


def test_stall_mid_body_times_out_and_resumes(blob, cache_dir: Path, proxy, monkeypatch) -> None:
    uri, data = blob
    monkeypatch.setenv("SYNAPSE_S3_READ_TIMEOUT", "0.5")
    proxy.faults[:] = [Fault("stall", 700_000, seconds=3)]
    r = fetch(uri, cache_dir=cache_dir)
    assert r.path.read_bytes() == data
    gets = proxy.count("GET")
    assert gets == 2, proxy.requests


def test_persistent_resets_give_clean_error(blob, cache_dir: Path, proxy, monkeypatch, tmp_path: Path) -> None:
    uri, _ = blob
    monkeypatch.setenv("SYNAPSE_FETCH_RETRIES", "2")
    proxy.faults[:] = [Fault("reset", 200_000)] * 20
    with pytest.raises(StorageError) as ei:
        fetch(uri, cache_dir=cache_dir, dest=tmp_path / "out")
    msg = str(ei.value)
    assert uri in msg and proxy.endpoint in msg and ei.value.exit_code == 4
    objects, tmp = cache_state(cache_dir)
    assert objects == [] and tmp == []  # nothing that could look complete, nothing left over
    assert not (tmp_path / "out").exists()


def test_server_error_is_retried(blob, cache_dir: Path, proxy, monkeypatch) -> None:
    """A truncated response (reset right after the status line) counts as transient too."""
    uri, data = blob
    proxy.faults[:] = [Fault("reset", 20), Fault("reset", 0)]
    assert fetch(uri, cache_dir=cache_dir).path.read_bytes() == data
    assert proxy.count("GET") == 3


def test_presigned_reset_resumes(s3, bucket: str, cache_dir: Path, proxy) -> None:
    data = os.urandom(SIZE)
    s3.put_object(Bucket=bucket, Key="u.bin", Body=data)
    from .test_http_local import _presign

    url = _presign(proxy.endpoint, bucket, "u.bin")  # signed for the proxy's host (Garage checks)
    proxy.faults[:] = [Fault("reset", 1024 * 1024)]
    r = fetch(url, cache_dir=cache_dir)
    assert r.path.read_bytes() == data
    assert any("Range" not in p for p in _ranges(proxy))
    assert proxy.count("GET") == 2
