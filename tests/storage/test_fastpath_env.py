"""The fast path honours what botocore honours, or hands the request to boto3, and says so.

Region (AWS_DEFAULT_REGION vs AWS_REGION vs the config file), CA files (AWS_CA_BUNDLE,
REQUESTS_CA_BUNDLE, SSL_CERT_FILE) over real TLS with a CA made here, proxies (HTTP(S)_PROXY,
NO_PROXY), and a fallback to boto3 that shows in the result, the cache entry, the log and the
runner's download event.  Against Garage: a wrong region or a wrong signature is refused there.
"""

from __future__ import annotations

import http.server
import json
import logging
import os
import threading
from pathlib import Path

import pytest

from synapse_runtime.errors import StorageError
from synapse_runtime.storage import fetch
from synapse_runtime.storage.fastpath import FastPath

from .netutil import Fault, Proxy, fake_aws_env
from .tlsutil import TLSTerminator, make_ca_and_cert


@pytest.fixture
def garage(garage_server, monkeypatch, tmp_path: Path):
    """Env for Garage (region only in AWS_REGION) and a bucket with one object, ``o.bin``."""
    import boto3

    fake_aws_env(monkeypatch, garage_server.endpoint, tmp_path, access=garage_server.access,
                 secret=garage_server.secret, read_timeout=5)
    monkeypatch.setenv("AWS_REGION", garage_server.region)
    client = boto3.session.Session().client("s3", endpoint_url=garage_server.endpoint, region_name=garage_server.region)
    bucket = f"env-{os.urandom(6).hex()}"
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="o.bin", Body=b"o" * 200_000, ChecksumAlgorithm="CRC32")
    return garage_server, bucket


def _meta(path: Path) -> dict:
    return json.loads((path.parent / "meta.json").read_text())


# ---- region ----------------------------------------------------------------------------------

REGION_CASES = [  # (AWS_DEFAULT_REGION, AWS_REGION, config file region)
    ("eu-west-1", None, None), (None, "ap-south-1", None), ("eu-west-1", "ap-south-1", None),
    (None, None, None), ("eu-west-1", None, "us-west-2"), (None, None, "us-west-2"),
]


@pytest.mark.parametrize("default,region,config", REGION_CASES)
def test_both_paths_sign_for_one_region(default, region, config, monkeypatch, tmp_path: Path, moto_server) -> None:
    """The fast path's region is the boto3 client's, or the fast path steps aside (config file only)."""
    from synapse_runtime.storage.config import StorageSettings
    from synapse_runtime.storage.s3 import S3

    fake_aws_env(monkeypatch, moto_server, tmp_path, access="AKIATEST", secret="s", read_timeout=2)
    monkeypatch.delenv("AWS_REGION")
    for var, value in (("AWS_DEFAULT_REGION", default), ("AWS_REGION", region)):
        if value:
            monkeypatch.setenv(var, value)
    if config:
        cfg = tmp_path / "config"
        cfg.write_text(f"[default]\nregion = {config}\n")
        monkeypatch.setenv("AWS_CONFIG_FILE", str(cfg))
    boto_region = S3(StorageSettings.of()).client.meta.region_name
    fast, refusal = FastPath.from_env()
    if default is None and region is None and config:
        assert fast is None and "config file" in refusal and boto_region == config
    else:
        assert fast is not None and fast.region == boto_region == (default or region or "us-east-1")


@pytest.mark.parametrize("path", ["fast", "boto3"])
def test_garage_region_from_aws_region_or_default(garage, path, monkeypatch, tmp_path: Path) -> None:
    """Garage refuses a signature for another region: both paths use AWS_DEFAULT_REGION first, then AWS_REGION."""
    server, bucket = garage
    if path == "boto3":
        monkeypatch.setenv("SYNAPSE_S3_FAST_PATH", "0")
    assert fetch(f"s3://{bucket}/o.bin", cache_dir=tmp_path / "a").via == ("fast path" if path == "fast" else "boto3")
    monkeypatch.setenv("AWS_DEFAULT_REGION", server.region)
    monkeypatch.setenv("AWS_REGION", "us-east-1")  # botocore ignores it; so do we when the default is set
    assert fetch(f"s3://{bucket}/o.bin", cache_dir=tmp_path / "b").path.stat().st_size == 200_000
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", server.region)
    with pytest.raises(StorageError):  # signed for us-east-1: Garage says no, on either path
        fetch(f"s3://{bucket}/o.bin", cache_dir=tmp_path / "c")


# ---- fallback is never silent ----------------------------------------------------------------

def test_fallback_to_boto3_shows_everywhere(garage, monkeypatch, tmp_path: Path, caplog) -> None:
    server, bucket = garage
    proxy = Proxy(int(server.endpoint.rsplit(":", 1)[1]), method_faults={"HEAD": [Fault("503")]})
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    seen = []
    try:
        with caplog.at_level(logging.WARNING, logger="synapse_runtime.storage"):
            r = fetch(f"s3://{bucket}/o.bin", cache_dir=tmp_path / "c",
                      progress=lambda u, d, t, c, via=None: seen.append(via))
        r2 = fetch(f"s3://{bucket}/o.bin", cache_dir=tmp_path / "d")  # no fault left: the fast path serves
    finally:
        proxy.close()
    assert r.via == "boto3" and set(seen) == {"boto3"}
    meta = _meta(r.path)
    assert meta["via"] == "boto3" and meta["fallback"] == "HEAD answered 503"
    assert "handed over to boto3 (HEAD answered 503)" in caplog.text
    assert r2.via == "fast path" and _meta(r2.path)["via"] == "fast path" and "fallback" not in _meta(r2.path)


def test_download_event_says_which_path_served(garage, run_cli, monkeypatch, tmp_path: Path) -> None:
    _, bucket = garage
    env = {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "SYNAPSE_"))}
    env["SYNAPSE_CACHE_DIR"] = str(tmp_path / "cache")
    for fast_path, via in (("1", "fast path"), ("0", "boto3")):
        env.update(SYNAPSE_CHECKPOINT=f"s3://{bucket}/o.bin", SYNAPSE_S3_FAST_PATH=fast_path)
        run = run_cli("faults", "noop", env=env)
        assert run.exit_code == 0, run.stderr[-2000:]
        downloads = run.of_type("download")
        assert downloads and {e.get("via") for e in downloads} == {via}, downloads


# ---- proxies ---------------------------------------------------------------------------------

def test_proxy_hands_the_request_to_boto3(garage, monkeypatch, tmp_path: Path) -> None:
    """HTTP_PROXY applies to the endpoint: botocore would go through it, so boto3 serves; NO_PROXY lifts it."""
    server, bucket = garage
    proxy = Proxy(int(server.endpoint.rsplit(":", 1)[1]))  # a forwarding proxy as far as this test goes
    try:
        monkeypatch.setenv("HTTP_PROXY", proxy.endpoint)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        fast, refusal = FastPath.from_env()
        assert fast is None and "proxy" in refusal
        r = fetch(f"s3://{bucket}/o.bin", cache_dir=tmp_path / "a")
        assert r.via == "boto3" and "proxy" in _meta(r.path)["fallback"]
        assert proxy.count("HEAD") >= 1  # boto3 went through the proxy, as botocore does
        proxy.reset_counts()
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        r = fetch(f"s3://{bucket}/o.bin", cache_dir=tmp_path / "b")
        assert r.via == "fast path" and proxy.requests == []
    finally:
        proxy.close()


# ---- TLS with a private CA -------------------------------------------------------------------

@pytest.fixture
def tls_garage(garage, monkeypatch, tmp_path: Path):
    server, bucket = garage
    ca, cert, key = make_ca_and_cert(tmp_path / "secret-inputs" / "tls")
    term = TLSTerminator(int(server.endpoint.rsplit(":", 1)[1]), cert, key)
    monkeypatch.setenv("AWS_ENDPOINT_URL", term.endpoint)
    for var in ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    yield term, bucket, ca
    term.close()


@pytest.mark.parametrize("var", ["AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE"])
@pytest.mark.parametrize("path", ["fast", "boto3"])
def test_private_ca_trusted_when_configured(tls_garage, var, path, monkeypatch, tmp_path: Path) -> None:
    term, bucket, ca = tls_garage
    monkeypatch.setenv(var, str(ca))
    if path == "boto3":
        monkeypatch.setenv("SYNAPSE_S3_FAST_PATH", "0")
    r = fetch(f"s3://{bucket}/o.bin", cache_dir=tmp_path / "c")
    assert r.via == ("fast path" if path == "fast" else "boto3") and r.path.stat().st_size == 200_000
    assert fetch(f"s3://{bucket}/", cache_dir=tmp_path / "p").via == r.via  # ListObjectsV2 over TLS too


@pytest.mark.parametrize("path", ["fast", "boto3"])
def test_untrusted_certificate_fails_at_once(tls_garage, path, monkeypatch, tmp_path: Path) -> None:
    """No CA configured: a clear TLS error (exit 4, cause tls), not retried, no fallback that might trust more."""
    term, bucket, _ = tls_garage
    monkeypatch.setenv("SYNAPSE_FETCH_RETRIES", "5")
    if path == "boto3":
        monkeypatch.setenv("SYNAPSE_S3_FAST_PATH", "0")
    with pytest.raises(StorageError) as ei:
        fetch(f"s3://{bucket}/o.bin", cache_dir=tmp_path / "c")
    assert ei.value.details["cause"] == "tls" and "AWS_CA_BUNDLE" in ei.value.hint and ei.value.exit_code == 4
    assert term.connections == 1  # one try: a certificate does not get better


def test_ssl_cert_file_alone_is_left_to_boto3(tls_garage, monkeypatch) -> None:
    """botocore verifies against its own bundle whatever SSL_CERT_FILE says: the fast path does not guess."""
    _, _, ca = tls_garage
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    fast, refusal = FastPath.from_env()
    assert fast is None and "SSL_CERT_FILE" in refusal
    monkeypatch.setenv("AWS_CA_BUNDLE", str(ca))
    assert FastPath.from_env()[0] is not None


def test_https_to_http_redirect_refused(tmp_path: Path, monkeypatch) -> None:
    """A presigned https URL redirected to plain http: refused before anything is sent to the http host."""
    from synapse_runtime.storage.config import StorageSettings

    hits = []

    class Plain(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *a) -> None:
            pass

    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Plain)
    target = f"http://127.0.0.1:{plain.server_address[1]}/model.bin"

    class Redirect(Plain):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()

    redirect = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    for srv in (plain, redirect):
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    ca, cert, key = make_ca_and_cert(tmp_path / "secret-inputs" / "tls")
    term = TLSTerminator(redirect.server_address[1], cert, key)
    monkeypatch.setenv("AWS_CA_BUNDLE", str(ca))
    monkeypatch.setenv("SYNAPSE_FETCH_BACKOFF", "0.01")
    try:
        with pytest.raises(StorageError) as ei:
            fetch(f"{term.endpoint}/model.bin?X-Amz-Signature=abc", cache_dir=tmp_path / "c")
        assert ei.value.details["cause"] == "redirect" and "plain http" in str(ei.value)
        assert hits == [] and term.connections == 1  # never followed, never retried
        assert "abc" not in str(ei.value)
        assert StorageSettings.of().retries > 0
    finally:
        term.close()
        for srv in (plain, redirect):
            srv.shutdown()
            srv.server_close()
