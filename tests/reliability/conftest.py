"""Fixtures for reliability trials: a moto S3 server, a fault proxy in front of it, dummy credentials.

The moto server is the session's one (``moto_server``, tests/conftest.py), shared with the storage
tests; the proxy and the environment are the same helpers (tests/storage/netutil.py).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Iterator

import pytest

from tests.secrets import register
from tests.storage.netutil import Proxy, fake_aws_env

#: dummy credentials (moto accepts anything); the secret is registered so no stream may show it
ACCESS_KEY = "AKIARELIABILITYTEST"
SECRET_KEY = "dummy-reliability-secret-0000"
register(SECRET_KEY)

@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch, moto_server: str, tmp_path: Path) -> str:
    """The runtime's S3 configuration from the environment (boto3's own variables), pointing at moto."""
    fake_aws_env(monkeypatch, moto_server, tmp_path, access=ACCESS_KEY, secret=SECRET_KEY, read_timeout=1,
                 backoff_max=0.05)
    return moto_server


@pytest.fixture
def s3_direct(s3_env: str):
    """A boto3 client straight to moto (never through the proxy): for setting objects up."""
    import boto3

    return boto3.client("s3", endpoint_url=s3_env, region_name="us-east-1")


@pytest.fixture
def bucket(s3_direct) -> str:
    name = f"rel-{uuid.uuid4().hex[:12]}"
    s3_direct.create_bucket(Bucket=name)
    return name


@pytest.fixture
def fault_proxy(s3_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Proxy]:
    """The fault proxy in front of moto, made the endpoint of the code under test."""
    p = Proxy(int(s3_env.rsplit(":", 1)[1]))
    monkeypatch.setenv("AWS_ENDPOINT_URL", p.endpoint)
    yield p
    p.close()
