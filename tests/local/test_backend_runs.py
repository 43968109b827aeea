"""Job status reporting through a real run: RUNNING, then SUCCEEDED / FAILED / STOPPED."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synapse_runtime.testing import RunResult, parse_events
from tests.backend.backend_fake import TOKEN, FakeBackend
from tests.backend.conftest import backend  # noqa: F401 - the fake backend fixture, shared
from tests.conftest import PLUGINS, check_stream
from tests.secrets import register

register(TOKEN)




def env_for(backend: FakeBackend) -> dict[str, str]:
    return {"SYNAPSE_HOST": backend.url, "SYNAPSE_ACCESS_TOKEN": TOKEN, "SYNAPSE_JOB_ID": "job-1"}


def statuses(backend: FakeBackend) -> list[str]:
    return [p["status"] for p in backend.patches("job-1") if "status" in p]


def test_succeeded_run_reports_running_then_succeeded_with_result(run_cli, backend: FakeBackend) -> None:
    r = run_cli("text-tools", "wordcount", {"text": "a b a"}, env=env_for(backend))
    assert r.exit_code == 0
    s = statuses(backend)
    assert s[0] == "RUNNING" and s[-1] == "SUCCEEDED"
    final = backend.patches("job-1")[-1]
    assert final["result"]["words"] == 3
    assert TOKEN not in r.stdout + r.stderr


def test_failed_run_reports_failed_with_error(run_cli, backend: FakeBackend) -> None:
    r = run_cli("faults", "fail", {"message": "bad luck"}, env=env_for(backend))
    assert r.exit_code == 1
    assert statuses(backend)[-1] == "FAILED"
    assert backend.patches("job-1")[-1]["result"] == {"error": "bad luck"}


def test_cancelled_run_reports_stopped(tmp_path: Path, backend: FakeBackend) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "SYNAPSE_ENV_DIR": "", "SYNAPSE_SECRET_DIR": "", **env_for(backend),
           "SYNAPSE_ACTION_PARAMS": json.dumps({"seconds": 30, "steps": 2})}
    proc = subprocess.Popen([sys.executable, "-m", "synapse_runtime", "--plugin", str(PLUGINS / "faults"),
                             "--action", "slow", "--output", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 20
    while "RUNNING" not in statuses(backend):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=20)
    check_stream(RunResult(proc.returncode, parse_events(stdout), None, stdout, stderr, out))
    assert proc.returncode == 143
    assert statuses(backend)[-1] == "STOPPED"


def _real_sdk_installed() -> bool:
    import importlib.util

    from synapse_runtime.compat import SHIM_DIR

    spec = importlib.util.find_spec("synapse_sdk")
    return spec is not None and not (spec.origin or "").startswith(SHIM_DIR)


def test_dead_backend_never_fails_the_action(run_cli, tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {"SYNAPSE_HOST": f"http://127.0.0.1:{port}", "SYNAPSE_ACCESS_TOKEN": TOKEN, "SYNAPSE_JOB_ID": "job-1"}
    t0 = time.monotonic()
    r = run_cli("text-tools", "slugify", {"titles": ["x y"]}, env=env)
    assert r.exit_code == 0 and r.value == {"slugs": ["x-y"]}
    # With the real synapse-sdk installed (make test-sdk), importing it alone takes ~7 s on an idle host.
    assert time.monotonic() - t0 < (30 if _real_sdk_installed() else 10)
    warnings = [m["message"] for m in r.of_type("message") if m["context"] == "warning"]
    assert (warnings and "backend" in warnings[0]) or "backend" in r.stderr
    assert TOKEN not in r.stdout + r.stderr
