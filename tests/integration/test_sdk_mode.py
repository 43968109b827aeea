"""Which synapse-sdk the image under test has, and that a plugin written for upstream runs on that mode's
classes, in a container as a Job runs it.

The container suite runs twice (docs/compat.md, "What CI runs in each mode"): against the runtime image
(shim mode) and, with SYNAPSE_TEST_SDK_MODE=real (`make test-sdk-image`), against `make sdk-image`'s image,
where the real synapse-sdk is installed beside the runtime. These tests say, from inside the image, which
of the two ran, so a real-mode pass can never be a shim-mode pass under another name.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from synapse_runtime.compat.missing import UPSTREAM_PIN
from tests.conftest import check_stream
from tests.integration.conftest import SDK_MODE, sdk_in_image

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
UPSTREAM_STYLE = REPO / "tests" / "compat" / "plugins" / "upstream-style"
SDK_VERSION = UPSTREAM_PIN.split("==")[1]  # the version the runtime's hints name, and make sdk-image installs
ENV = {"SYNAPSE_PLUGIN_DIR": "/plugin"}


def test_synapse_sdk_in_the_image_is_the_mode_under_test(docker_client: Any, runtime_image: str) -> None:
    config = docker_client.images.get(runtime_image).attrs["Config"]
    assert config["User"] == "10001:10001" and config["Entrypoint"][0] == "tini"  # still the runtime image's
    found = sdk_in_image(docker_client, runtime_image)
    if SDK_MODE == "real":
        assert found == {"file": "/opt/synapse/venv/lib/python3.13/site-packages/synapse_sdk/__init__.py",
                         "version": SDK_VERSION, "shim": False}, found
    else:
        assert found["shim"] and found["version"] is None, found
        assert found["file"].endswith("/synapse_runtime/compat/synapse_sdk/__init__.py"), found


def test_an_upstream_style_action_runs_on_the_classes_of_the_mode(run_image: Any) -> None:
    """The action itself reports whose context and logger it got: upstream's only in real-package mode."""
    run = check_stream(run_image(plugin_dir=UPSTREAM_STYLE, env=ENV, action="probe", params={"text": "b a b"}))
    assert run.exit_code == 0, run.error or run.stderr[-3000:]
    v = run.value
    assert v["top"] == [["b", 2], ["a", 1]] and v["params_type"] == "ProbeParams"
    real = SDK_MODE == "real"
    assert v["ctx_module"] == ("synapse_sdk.plugins.context" if real else "synapse_runtime.actions.context")
    assert v["logger_is_upstream_base"] is real
    assert v["progress_percent"] == 100 and v["metrics"] == {"words": 3, "unique": 2}
    assert [m["message"] for m in run.of_type("message")][:2] == ["counting done", "plain-string level"]


def test_an_action_gets_a_writable_working_dir_showing_the_plugins_files(run_image: Any) -> None:
    """The root filesystem and the /plugin mount are read-only: the action runs in a per-run directory
    under /tmp linking the plugin's files (docs/contract.md, Working directory), whichever classes run it."""
    run = check_stream(run_image(plugin_dir=UPSTREAM_STYLE, env=ENV, action="workdir", params={}))
    assert run.exit_code == 0, run.error or run.stderr[-3000:]
    assert run.value["cwd"].startswith("/tmp/synapse-work-"), run.value
    assert run.value["code_line"] == "code: upstream-style"


def test_an_upstream_function_action_runs(run_image: Any) -> None:
    run = check_stream(run_image(plugin_dir=UPSTREAM_STYLE, env=ENV, action="words", params={"text": "one two"}))
    assert run.exit_code == 0, run.error or run.stderr[-3000:]
    assert run.value == {"count": 2, "params_type": "WordsParams"}


@pytest.mark.parametrize(("signal", "code"), [("SIGTERM", 143), ("SIGINT", 130)])
def test_an_upstream_style_action_is_cancelled_by_a_signal(run_image: Any, signal: str, code: int) -> None:
    """docker kill mid-execute: exit 143/130 within the grace period, `cancelled` in the stream and
    result.json, whichever classes run the action (upstream's have no signal handling of their own)."""
    running = run_image.start(plugin_dir=UPSTREAM_STYLE, env=ENV, action="nap", params={"seconds": 60},
                              termination_log=True)
    running.wait_for_event(lambda e: e["type"] == "message" and e["message"] == "napping", timeout=90)
    t0 = time.monotonic()
    running.kill(signal)
    run = check_stream(running.wait(timeout=30))
    assert time.monotonic() - t0 < 5
    assert run.exit_code == code and run.end["status"] == "cancelled"
    assert run.error["error_type"] == "Cancelled" and run.error["details"]["signal"] == signal
    assert run.result["status"] == "cancelled" and run.result["exit_code"] == code
    assert json.loads(run.extra["termination_message"])["status"] == "cancelled"


def test_a_result_that_misses_its_model_follows_the_rule_of_the_mode(run_image: Any) -> None:
    """Upstream only warns (real-package mode); the runtime's classes fail the run (docs/compat.md, item 2)."""
    run = check_stream(run_image(plugin_dir=UPSTREAM_STYLE, env=ENV, action="loose_result", params={"text": "a b"}))
    if SDK_MODE == "real":
        assert run.exit_code == 0 and run.value == {"count": 2}, run.error
        assert any("LooseResultModel" in m["message"] for m in run.of_type("message") if m["context"] == "warning")
    else:
        assert run.exit_code == 1 and "LooseResultModel" in run.error["message"]
