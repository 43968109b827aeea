"""An output upload is reported as its own ``upload`` event (issue 21), through a real run: the CLI in
a subprocess, the output directory uploaded to a real S3 server on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import PLUGINS, check_stream
from synapse_runtime.testing import run_local


@pytest.mark.parametrize("aws_env", [("moto", "fast")], indirect=True, ids=["moto-fast"])
def test_output_upload_is_an_upload_event(s3, bucket: str, tmp_path: Path) -> None:
    r = check_stream(run_local(PLUGINS / "text-tools", "wordcount", {"text": "a b a"}, output_dir=tmp_path / "out",
                               env={"SYNAPSE_OUTPUT_URI": f"s3://{bucket}/jobs/1/"}))
    assert r.exit_code == 0, r.stderr[-2000:]
    uploads = [e for e in r.events if e["type"] == "upload"]
    assert uploads, [e["type"] for e in r.events]
    assert all(e["uri"].startswith(f"s3://{bucket}/jobs/1/") for e in uploads)
    assert all("cached" not in e and "direction" not in e for e in uploads)
    assert not [e for e in r.events if e["type"] == "download"]  # nothing was fetched: no download event
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="jobs/1/")["Contents"]}
    assert "jobs/1/result.json" in keys
    assert uploads[-1]["bytes"] > 0


def test_an_upload_past_its_timeout_still_ends_the_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The upload's thread hangs on a server that accepts and never answers: the run reports exit 4
    after SYNAPSE_UPLOAD_TIMEOUT, and the process ends then (signals.abandon_threads -> os._exit),
    not when the stuck thread's read timeout would."""
    import socket
    import time

    from tests.storage.netutil import fake_aws_env

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # connections complete in the backlog; nothing is ever read or answered
    try:
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        fake_aws_env(monkeypatch, endpoint, tmp_path, access="AKIATESTTESTTEST", secret="fake-secret-do-not-print",
                     read_timeout=120)
        t0 = time.monotonic()
        r = check_stream(run_local(PLUGINS / "text-tools", "wordcount", {"text": "a"}, output_dir=tmp_path / "out",
                                   env={"SYNAPSE_OUTPUT_URI": "s3://silent/jobs/1/", "SYNAPSE_UPLOAD_TIMEOUT": "2",
                                        "SYNAPSE_FETCH_RETRIES": "0"}, timeout=45))
        took = time.monotonic() - t0
    finally:
        silent.close()
    assert r.exit_code == 4, r.stderr[-2000:]
    error = [e for e in r.events if e["type"] == "error"][-1]
    assert error["details"]["cause"] == "timeout", error
    assert took < 40, f"the process waited for the stuck upload thread: {took:.1f} s"
