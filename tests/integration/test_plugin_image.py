"""A plugin's own image (scripts/plugin-image.sh): the synapse-sdk-pinning showcase, built and run.

The build is the documented command, FROM the runtime image under test, with the plugin's
requirements (the real synapse-sdk) from a wheelhouse; the run is the image as a Job runs it
(read-only root, non-root).  The same plugin in the plain runtime image (no synapse-sdk there) gets
the clear exit-3 answer instead.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PLUGIN = REPO / "plugins" / "sdk-pipeline"


@pytest.fixture(scope="module")
def plugin_image(runtime_image: str, docker_client) -> str:
    tag = f"synapse-plugin-test/sdk-pipeline:{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "RUNTIME_IMAGE": runtime_image}
    proc = subprocess.run(["scripts/plugin-image.sh", str(PLUGIN), "-t", tag], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=1800, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"plugin-image.sh failed:\n{proc.stderr[-6000:]}"
    assert proc.stdout.strip().splitlines()[-1] == tag
    yield tag
    docker_client.images.remove(tag, force=True)


def test_showcase_runs_on_the_real_sdk_in_its_own_image(plugin_image: str, run_image, docker_client) -> None:
    labels = docker_client.images.get(plugin_image).labels
    assert labels["io.synapse.plugin.code"] == "sdk-pipeline" and labels["io.synapse.plugin.version"] == "1.0.0"
    r = run_image(image=plugin_image, action="readability", params={})
    assert r.exit_code == 0, r.error or r.stderr[-3000:]
    v = r.value
    assert v["source"] == "gettysburg.txt" and v["sentences"] == 10 and v["words"] == 272
    assert 50 < v["flesch_reading_ease"] < 75
    assert [m["category"] for m in r.of_type("metrics")] == ["split", "score"]
    assert r.result["status"] == "succeeded"


def test_showcase_in_the_plain_runtime_image_says_what_is_missing(run_image) -> None:
    r = run_image(plugin="sdk-pipeline", action="readability", params={})
    assert r.exit_code == 3
    assert r.error["details"]["module"] == "synapse_sdk.plugins.pipelines"
    assert "synapse-sdk==2026.2.17" in r.error["hint"]


def test_build_rejects_a_config_upstream_would_reject(tmp_path, runtime_image: str) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.yaml").write_text("name: Bad\ncode: bad\ncategory: neural_net\nactions: {}\n")
    proc = subprocess.run(["scripts/plugin-image.sh", str(bad)], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "RUNTIME_IMAGE": runtime_image}, timeout=120)
    assert proc.returncode == 2 and "data_type" in proc.stderr
