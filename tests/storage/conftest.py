"""Fixtures: fake credentials and the session's moto S3 server (tests/conftest.py), a fault proxy, buckets."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from .netutil import Proxy, fake_aws_env

@pytest.fixture(params=["light", "boto3"])
def aws_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, moto_server: str, tmp_path: Path) -> str:
    """Fake credentials and the moto endpoint, as the runner would put them in os.environ.

    Every S3 test runs twice: through the boto3-free signed path (the default when credentials and
    endpoint come from env) and through boto3 (SYNAPSE_S3_FAST_PATH=0, as with profiles or IRSA).
    """
    fake_aws_env(monkeypatch, moto_server, tmp_path, access="AKIATESTTESTTEST", secret="fake-secret-do-not-print",
                 read_timeout=2)
    if request.param == "boto3":
        monkeypatch.setenv("SYNAPSE_S3_FAST_PATH", "0")
    return moto_server


@pytest.fixture
def s3(aws_env: str):
    import boto3

    return boto3.client("s3", endpoint_url=aws_env, region_name="us-east-1")


@pytest.fixture
def bucket(s3) -> str:
    name = f"b-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def proxy(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Proxy]:
    """A counting/fault-injecting proxy in front of moto, made the S3 endpoint for the code under test."""
    port = int(aws_env.rsplit(":", 1)[1])
    p = Proxy(port)
    monkeypatch.setenv("AWS_ENDPOINT_URL", p.endpoint)
    yield p
    p.close()


def cache_state(cache_dir: Path) -> tuple[list[str], list[str]]:
    """(complete entries, temp items) of a cache directory."""
    objects = sorted(os.listdir(cache_dir / "objects")) if (cache_dir / "objects").exists() else []
    tmp = sorted(n for n in os.listdir(cache_dir / "tmp") if not n.startswith(".probe")) if (cache_dir / "tmp").exists() else []
    return objects, tmp
