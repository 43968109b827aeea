"""Fixtures for reliability trials: a moto S3 server, a fault proxy in front of it, dummy credentials.

These do not come from tests/storage/conftest.py (pytest does not share fixtures across sibling
directories); the servers themselves are the same helpers (tests/storage/netutil.py).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from tests.secrets import register
from tests.storage.netutil import Proxy, start_moto

#: dummy credentials (moto accepts anything); the secret is registered so no stream may show it
ACCESS_KEY = "AKIARELIABILITYTEST"
SECRET_KEY = "dummy-reliability-secret-0000"
register(SECRET_KEY)

_CLEARED = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
            "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
            "AWS_REGION", "AWS_DEFAULT_REGION"]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    proc, endpoint = start_moto()
    yield endpoint
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str, tmp_path: Path) -> str:
    """The runtime's S3 configuration from the environment (boto3's own variables), pointing at moto."""
    for var in _CLEARED + [v for v in os.environ if v.startswith("SYNAPSE_")]:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("SYNAPSE_FETCH_BACKOFF", "0.01")
    monkeypatch.setenv("SYNAPSE_FETCH_BACKOFF_MAX", "0.05")
    monkeypatch.setenv("SYNAPSE_S3_CONNECT_TIMEOUT", "2")
    monkeypatch.setenv("SYNAPSE_S3_READ_TIMEOUT", "1")
    return moto_endpoint


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
