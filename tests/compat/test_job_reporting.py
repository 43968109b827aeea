"""Real-package mode's job reporting, against upstream's own entrypoint, on one stand-in backend.

The plugin (plugins/step-upload) has the published synapse-sdk v2 upload plugins' shape.  It runs
twice per test: through ``synapse-runtime run`` and through ``python -m synapse_sdk.plugins.entrypoint``
(upstream's job entrypoint, started from the plugin's folder as upstream's runner starts it), each
against a real HTTP stand-in of the Synapse backend; the tests compare what the backend received.
Only meaningful where the real synapse-sdk is installed (``make test-sdk``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from synapse_runtime.testing import run_local
from tests.backend.backend_fake import TOKEN, FakeBackend
from tests.backend.conftest import backend  # noqa: F401 - the fake backend fixture, shared
from tests.conftest import check_stream
from tests.secrets import register

from .conftest import COMPAT_PLUGINS

pytestmark = pytest.mark.real_sdk
register(TOKEN)

PLUGIN = COMPAT_PLUGINS / "step-upload"
ENTRYPOINT = "step_upload.upload.UploadAction"
PARAMS = {"files": 8, "delay": 0.25}  # the upload step lasts ~2 s: a progress PATCH lands mid-step
PROPORTIONS = {"initialize": (4, 0), "upload_files": (56, 2), "generate_data_units": (36, 3), "cleanup": (4, 4)}




def _env(backend: FakeBackend, home: Path, job_id: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SYNAPSE_JOB_ID", "RAY_JOB_ID")}
    env.update(SYNAPSE_HOST=backend.url, SYNAPSE_ACCESS_TOKEN=TOKEN, HOME=str(home))  # no ~/.synapse config
    if job_id:
        env["SYNAPSE_JOB_ID"] = job_id
    return env


def run_runtime(backend: FakeBackend, tmp_path: Path, job_id: str | None = "job-1") -> Any:
    result = run_local(PLUGIN, "upload", PARAMS, env=_env(backend, tmp_path, job_id), output_dir=tmp_path / "out",
                       inherit_env=False)
    check_stream(result)
    assert result.exit_code == 0, (result.error, result.stderr[-3000:])
    return result


def run_upstream(backend: FakeBackend, tmp_path: Path, job_id: str | None = "job-1") -> subprocess.CompletedProcess:
    env = _env(backend, tmp_path, job_id)
    env.update(SYNAPSE_ACTION_ENTRYPOINT=ENTRYPOINT, SYNAPSE_ACTION_PARAMS=json.dumps(PARAMS))
    proc = subprocess.run([sys.executable, "-m", "synapse_sdk.plugins.entrypoint"], cwd=PLUGIN, env=env,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def progress_records(backend: FakeBackend) -> list[dict[str, Any]]:
    return [p["progress_record"] for p in backend.patches("job-1") if "progress_record" in p]


def messages(backend: FakeBackend) -> list[tuple[Any, ...]]:
    return [(e["data"].get("key"), e.get("step"), e.get("level"), e["data"]["content"])
            for e in backend.logs if e["event"] == "message"]


def weighted_total(record: dict[str, Any]) -> float:
    """Upstream's overall: the steps before the current one in full, the current one by its percent."""
    steps, now = record["record"]["steps"], record["current_progress"]
    current = now["step"]
    total = 0.0
    for name, step in sorted(steps.items(), key=lambda item: item[1]["order"]):
        if name == current:
            return total + step["proportion"] * now["percent"] / 100
        total += step["proportion"] if "percent" in step else 0
    raise AssertionError(f"current step {current!r} not in the record")


def test_backend_receives_what_upstreams_entrypoint_sends(backend: FakeBackend, tmp_path: Path) -> None:
    run_upstream(backend, tmp_path)
    upstream_records, upstream_messages = progress_records(backend), messages(backend)
    backend.requests.clear()
    backend.logs.clear()
    backend.jobs["job-1"] = {"id": "job-1", "status": "PENDING"}
    result = run_runtime(backend, tmp_path)
    ours_records, ours_messages = progress_records(backend), messages(backend)

    for records in (upstream_records, ours_records):
        # The first progress record lists every step with a proportion, with its registry order
        # (scan_files, registered second, has none), in that order.
        first = records[0]["record"]["steps"]
        assert {name: (s["proportion"], s["order"]) for name, s in first.items()} == PROPORTIONS
        assert list(first) == list(PROPORTIONS)
        # Every overall is the proportion-weighted total; one lands mid-way through the upload.
        for record in records:
            assert abs(record["current_progress"]["overall"] - weighted_total(record)) <= 0.01, record
        mid = [r["current_progress"] for r in records
               if r["current_progress"]["step"] == "upload_files" and 0 < r["current_progress"]["percent"] < 100]
        assert mid and all(4 < c["overall"] < 60 for c in mid), [r["current_progress"] for r in records]
        assert records[-1]["current_progress"]["overall"] == 100

    # Message keys (upstream's codes and the plugin's own), levels and the step each was logged in,
    # in order: scan_files logs but never reports progress; initialize logs before its first.
    assert ours_messages == upstream_messages
    keys_steps = [(key, step) for key, step, _, _ in ours_messages]
    assert ours_messages[1][3] == "Running in job job-1 (RUNNING)"  # RUNNING was set before the action ran
    assert keys_steps[:4] == [("UPLOAD_INITIALIZED", "initialize"), ("STEP_UPLOAD_JOB_FOUND", "initialize"),
                              ("STEP_UPLOAD_SCAN_STARTED", "scan_files"), ("STEP_UPLOAD_SCAN_STAGED", "scan_files")]
    assert ("STEP_UPLOAD_SLOW_FILE", "upload_files") in keys_steps
    assert keys_steps[-1] == ("UPLOAD_COMPLETED", "cleanup")
    # The same keys and steps are on our own event stream.
    streamed = [(m.get("key"), m.get("step")) for m in result.of_type("message") if m.get("key")]
    assert streamed == keys_steps
    # The staged file went into the (writable) working directory and was removed by cleanup.
    assert not list(PLUGIN.glob(".step-upload-*"))


def test_without_a_job_id_nothing_asks_the_backend_about_the_host_name(backend: FakeBackend, tmp_path: Path) -> None:
    """The host-name fallback names no job: upstream's context gets no job id, so the plugin's job
    lookup (``if ctx.job_id: client.get_job(...)``, as upstream's own steps do) never runs, and
    nothing is reported, exactly as under upstream's entrypoint without a job id."""
    result = run_runtime(backend, tmp_path, job_id=None)
    host = socket.gethostname()
    assert result.events[0]["job_id"] == os.uname().nodename  # our stream still names the run
    assert [(r.method, r.path) for r in backend.requests if r.path.startswith("/jobs/")] == []
    assert not any(host in r.path for r in backend.requests)
    assert any("no job id was given" in m["message"] for m in result.of_type("message"))
    run_upstream(backend, tmp_path, job_id=None)
    assert [r.path for r in backend.requests if r.path.startswith("/jobs/")] == []
    # With a job id the same lookup does reach the backend: the assertions above are not vacuous.
    run_runtime(backend, tmp_path, job_id="job-1")
    assert ("GET", "/jobs/job-1/") in [(r.method, r.path) for r in backend.requests]
