"""A plugin's own image (scripts/plugin-image.sh): the synapse-sdk-pinning showcase, built and run.

The build is the documented command, FROM the runtime image under test, with the plugin's
requirements (the real synapse-sdk) from a wheelhouse; the run is the image as a Job runs it
(read-only root, non-root).  The same plugin in the plain runtime image (no synapse-sdk there) gets
the clear exit-3 answer instead.

In the real-package pass (SYNAPSE_TEST_SDK_MODE=real, `make test-sdk-image`) the image under test has
synapse-sdk itself: the tests that need a real-package image use it (``real_sdk_image``) instead of
building the showcase's image again on top of it, and the showcase runs from the copy every runtime
image carries.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.integration.conftest import SDK_MODE

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


@pytest.fixture(scope="module")
def real_sdk_image(runtime_image: str, request: pytest.FixtureRequest) -> str:
    """An image with the real synapse-sdk and every example plugin: the showcase's own image built FROM the
    plain runtime image (shim pass), or the image under test itself (real-package pass: make sdk-image's)."""
    return runtime_image if SDK_MODE == "real" else request.getfixturevalue("plugin_image")


@pytest.mark.sdk_mode("shim", reason="its own image is built FROM the plain runtime image in the shim pass; here "
                      "the image under test has synapse-sdk already and runs the showcase as it is "
                      "(test_showcase_runs_where_the_image_has_the_real_sdk)")
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


@pytest.mark.sdk_mode("shim", reason="the exit-3 answer is the shim's: with the real synapse-sdk in the image "
                     "the showcase runs (test_showcase_runs_where_the_image_has_the_real_sdk)")
def test_showcase_in_the_plain_runtime_image_says_what_is_missing(run_image) -> None:
    r = run_image(plugin="sdk-pipeline", action="readability", params={})
    assert r.exit_code == 3
    assert r.error["details"]["module"] == "synapse_sdk.plugins.pipelines"
    assert "synapse-sdk==2026.2.17" in r.error["hint"]


@pytest.mark.sdk_mode("real", reason="the plain runtime image has no synapse-sdk: there the showcase answers exit 3 "
                      "(test_showcase_in_the_plain_runtime_image_says_what_is_missing)")
def test_showcase_runs_where_the_image_has_the_real_sdk(run_image) -> None:
    """The copy of the showcase every runtime image carries, on make sdk-image's image: no image of its own."""
    r = run_image(plugin="sdk-pipeline", action="readability", params={})
    assert r.exit_code == 0, r.error or r.stderr[-3000:]
    assert r.value["source"] == "gettysburg.txt" and r.value["sentences"] == 10 and r.value["words"] == 272
    assert r.result["status"] == "succeeded"


def test_build_rejects_a_config_upstream_would_reject(tmp_path, runtime_image: str) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.yaml").write_text("name: Bad\ncode: bad\ncategory: neural_net\nactions: {}\n")
    proc = subprocess.run(["scripts/plugin-image.sh", str(bad)], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "RUNTIME_IMAGE": runtime_image}, timeout=120)
    assert proc.returncode == 2 and "data_type" in proc.stderr


UPSTREAM_STYLE = REPO / "tests" / "compat" / "plugins" / "upstream-style"


@pytest.fixture(params=[
    pytest.param("shim", marks=pytest.mark.sdk_mode(
        "shim", reason="shim mode needs an image without synapse-sdk: every image built FROM make sdk-image's has it")),
    "real",
])
def mode_image(request, runtime_image: str) -> tuple[str, str]:
    """The runtime image (no synapse-sdk: shim mode) and an image with synapse-sdk installed
    (real-package mode: ``real_sdk_image``); both carry every example plugin."""
    if request.param == "shim":
        return "shim", runtime_image
    return "real", request.getfixturevalue("real_sdk_image")


def test_upstream_style_plugin_in_both_modes(mode_image: tuple[str, str], run_image) -> None:
    mode, image = mode_image
    env = {"SYNAPSE_PLUGIN_DIR": "/plugin"}
    probe = run_image(image=image, plugin_dir=UPSTREAM_STYLE, env=env, action="probe", params={"text": "b a b"})
    assert probe.exit_code == 0, probe.error or probe.stderr[-3000:]
    assert probe.value["top"] == [["b", 2], ["a", 1]]
    assert probe.value["ctx_module"] == ("synapse_sdk.plugins.context" if mode == "real" else "synapse_runtime.actions.context")
    failed = run_image(image=image, plugin_dir=UPSTREAM_STYLE, env=env, action="pipeline",
                       params={"numbers": [2], "fail_at": "square"})
    assert failed.exit_code == 1 and "Step 'square' failed" in failed.error["message"]
    journal = (failed.output_dir / "journal.txt").read_text().splitlines()
    assert journal[-3:] == ["rollback square", "rollback check", "rollback load"]
    upload = run_image(image=image, plugin_dir=UPSTREAM_STYLE, env=env, action="upload", params={})
    assert (upload.exit_code == 3) is (mode == "shim"), upload.error


def test_text_tools_example_on_the_real_sdk(real_sdk_image: str, run_image) -> None:
    r = run_image(image=real_sdk_image, plugin="text-tools", action="wordcount",
                  env={"SYNAPSE_PLUGIN_DIR": "/opt/synapse/plugins/text-tools"}, params={"text": "a b a"})
    assert r.exit_code == 0, r.error
    assert r.value["words"] == 3 and r.value["top"][0] == {"word": "a", "count": 2}


def _containers_of_build(docker_client, runtime_image: str, code: str) -> set[str]:
    """Containers (running or not) that a build of plugin ``code`` made: FROM the runtime image, with
    ``PLUGIN_CODE=<code>`` in their environment (a RUN step's container sees the build args it uses).
    Filtered so that containers other people run from the same image at the same time never count."""
    found = set()
    for c in docker_client.containers.list(all=True, filters={"ancestor": runtime_image}):
        env = c.attrs.get("Config", {}).get("Env") or []
        if f"PLUGIN_CODE={code}" in env:
            found.add(c.id)
    return found


def test_a_plugin_that_cannot_import_fails_the_build_and_leaves_no_container(tmp_path, runtime_image: str,
                                                                              docker_client) -> None:
    """Issue 22, item 5: exit 3 with the import error, and no stopped container of the failed RUN step
    left behind (the legacy builder keeps it unless the build says --force-rm)."""
    code = f"broken-import-{uuid.uuid4().hex[:8]}"
    plugin = tmp_path / code
    (plugin / "broken").mkdir(parents=True)
    (plugin / "config.yaml").write_text(
        f"name: Broken import\ncode: {code}\nversion: 0.1.0\ncategory: custom\n"
        "actions:\n  run:\n    entrypoint: broken.action:Run\n")
    (plugin / "broken" / "__init__.py").write_text("")
    (plugin / "broken" / "action.py").write_text("import module_nobody_installed_4f2a  # noqa: F401\n")
    tag = f"synapse-plugin-test/{code}:0.1.0"
    before = {c.id for c in docker_client.containers.list(all=True)}
    env = {**os.environ, "RUNTIME_IMAGE": runtime_image, "PYTHON": sys.executable}
    try:
        proc = subprocess.run(["scripts/plugin-image.sh", str(plugin), "--offline", "-t", tag], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
        left = _containers_of_build(docker_client, runtime_image, code) - before
        assert proc.returncode == 3, proc.stderr[-4000:]
        assert "module_nobody_installed_4f2a" in proc.stderr, proc.stderr[-4000:]
        assert left == set(), f"the failed build left {len(left)} container(s): {sorted(left)}"
    finally:
        for cid in _containers_of_build(docker_client, runtime_image, code) - before:
            docker_client.containers.get(cid).remove(force=True, v=True)  # with its anonymous volumes
        shutil.rmtree(REPO / "build" / "plugin-wheels" / code, ignore_errors=True)
        try:
            docker_client.images.remove(tag, force=True)
        except Exception:  # noqa: BLE001 - not built: the expected case
            pass
