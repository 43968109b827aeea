"""Fixtures: the two S3 servers (moto, tests/conftest.py; Garage, here), fake credentials, a fault proxy, buckets.

Every S3 test runs four times: on moto and on Garage, each through the fast path (our own SigV4
signer and http.client, the default when credentials and endpoint come from env) and through boto3
(SYNAPSE_S3_FAST_PATH=0, as with profiles or IRSA).  moto accepts any signature, so only the Garage
runs can catch a signing mistake; moto stays for what it does well (fast start, fault injection).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from .garage import Garage, GarageUnavailable, start_garage
from .netutil import Proxy, fake_aws_env

#: (server, path) pairs every S3 test runs with
SERVER_PATHS = [("moto", "fast"), ("moto", "boto3"), ("garage", "fast"), ("garage", "boto3")]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``@pytest.mark.moto_only`` tests (what only moto has: ACLs, anonymous access) run on moto alone:
    their Garage variants are not generated-then-skipped but left out, and said so."""
    keep, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        server = callspec.params.get("aws_env", ("",))[0] if callspec else ""
        (dropped if item.get_closest_marker("moto_only") and server == "garage" else keep).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.fixture(scope="session")
def garage_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Garage]:
    """One Garage node for the session.  Without a binary: skipped locally, a failure in CI (CI=true)."""
    from tests.secrets import INPUT_DIR_NAME, register

    try:
        # under "secret-inputs": Garage's own database holds the key's secret; the session's secret
        # scan (tests/secrets.py) skips such directories and checks everything else
        server = start_garage(tmp_path_factory.mktemp("garage") / INPUT_DIR_NAME)
    except GarageUnavailable as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"no garage binary in CI: {exc}", pytrace=False)
        pytest.skip(f"no garage binary (scripts/garage.sh bin): {exc}")
    register(server.secret)
    yield server
    server.stop()


@pytest.fixture(params=SERVER_PATHS, ids=[f"{s}-{p}" for s, p in SERVER_PATHS])
def aws_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Credentials and the server's endpoint, as the runner would put them in os.environ; returns the endpoint."""
    server, path = request.param
    if server == "garage":
        g: Garage = request.getfixturevalue("garage_server")
        fake_aws_env(monkeypatch, g.endpoint, tmp_path, access=g.access, secret=g.secret, read_timeout=2)
        monkeypatch.setenv("AWS_REGION", g.region)
        endpoint = g.endpoint
    else:
        endpoint = request.getfixturevalue("moto_server")
        fake_aws_env(monkeypatch, endpoint, tmp_path, access="AKIATESTTESTTEST", secret="fake-secret-do-not-print",
                     read_timeout=2)
    if path == "boto3":
        monkeypatch.setenv("SYNAPSE_S3_FAST_PATH", "0")
    return endpoint


@pytest.fixture
def server_kind(aws_env: str, request: pytest.FixtureRequest) -> str:
    """"moto" or "garage": for the few assertions where the servers legitimately differ."""
    return request.node.callspec.params["aws_env"][0]


@pytest.fixture
def s3(aws_env: str):
    """A boto3 client straight to the server (never through the proxy), for setting objects up."""
    import boto3

    # a fresh session: boto3's default one caches the first credentials it saw (the other server's)
    return boto3.session.Session().client("s3", endpoint_url=aws_env, region_name=os.environ["AWS_REGION"])


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
    """A counting/fault-injecting proxy in front of the server, made the S3 endpoint for the code under test."""
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
