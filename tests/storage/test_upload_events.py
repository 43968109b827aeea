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
