"""What a pod leaves for Kubernetes when its end is rough (issue 14, items 5 and 10), with real processes:

* the termination message is written before the output upload, so a SIGKILL mid-upload (the end of the
  grace period) still leaves it;
* the upload is bounded (SYNAPSE_UPLOAD_TIMEOUT): an endpoint that accepts and never answers ends the
  run with exit 4 and says so in result.json and the termination message, instead of hanging;
* a large result is one short `result` event (a summary, the whole in result.json): no event line over
  16 KiB, the size at which container runtimes split log lines.

The "S3 endpoint" is a local socket that accepts connections and never answers.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from synapse_runtime.contract.outputs import RESULT_EVENT_LIMIT, emit_result, result_event

ROOT = Path(__file__).resolve().parents[2]
LINE_LIMIT = 16 * 1024


class SilentEndpoint:
    """Accepts TCP connections, reads whatever comes, never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connected = threading.Event()
        self.conns: list[socket.socket] = []
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            self.connected.set()

    def close(self) -> None:
        self._stop = True
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.fixture
def endpoint() -> Iterator[SilentEndpoint]:
    e = SilentEndpoint()
    yield e
    e.close()


def _env(endpoint: SilentEndpoint, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNAPSE_", "AWS_"))}
    env.update({
        "SYNAPSE_GPU_PROBE": "0",
        "SYNAPSE_TERMINATION_LOG": str(tmp_path / "termination-log"),
        "SYNAPSE_OUTPUT_URI": "s3://bucket/runs/job-1/",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{endpoint.port}",
        "AWS_ACCESS_KEY_ID": "AKIATESTONLY",
        "AWS_SECRET_ACCESS_KEY": "test-only-secret-value",
        "AWS_REGION": "us-east-1",
        **extra,
    })
    (tmp_path / "termination-log").write_text("")  # the kubelet creates it empty
    return env


def _start(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "synapse_runtime", "run", "--plugin", str(ROOT / "plugins" / "text-tools"),
         "--action", "slugify", "--params", "-", "--output", str(tmp_path / "out")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )


def test_termination_message_survives_sigkill_mid_upload(tmp_path: Path, endpoint: SilentEndpoint) -> None:
    proc = _start(tmp_path, _env(endpoint, tmp_path))
    assert proc.stdin is not None
    proc.stdin.write(json.dumps({"titles": ["Hello World"]}))
    proc.stdin.close()
    try:
        assert endpoint.connected.wait(60), "the upload never started"
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)  # the kubelet at the end of terminationGracePeriodSeconds
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    text = (tmp_path / "termination-log").read_text()
    assert text, "no termination message: it was to be written after the upload"
    message = json.loads(text)
    assert message["status"] == "succeeded" and message["exit_code"] == 0
    assert message["upload"] == "in progress"
    assert "test-only-secret-value" not in text
    assert json.loads((tmp_path / "out" / "result.json").read_text())["status"] == "succeeded"


def test_upload_is_bounded(tmp_path: Path, endpoint: SilentEndpoint) -> None:
    proc = _start(tmp_path, _env(endpoint, tmp_path, SYNAPSE_UPLOAD_TIMEOUT="2"))
    t0 = time.monotonic()
    try:
        stdout, _ = proc.communicate(json.dumps({"titles": ["Hello World"]}), timeout=45)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    took = time.monotonic() - t0
    assert proc.returncode == 4, stdout[-2000:]
    assert took < 30, f"the upload held the run {took:.0f} s"
    events = [json.loads(line) for line in stdout.splitlines()]
    error = next(e for e in events if e["type"] == "error")
    assert "within 2 s" in error["message"] and "SYNAPSE_UPLOAD_TIMEOUT" in error["hint"]
    assert events[-1]["type"] == "end" and events[-1]["exit_code"] == 4
    doc = json.loads((tmp_path / "out" / "result.json").read_text())
    assert doc["status"] == "failed" and doc["exit_code"] == 4
    message = json.loads((tmp_path / "termination-log").read_text())
    assert message["status"] == "failed" and message["exit_code"] == 4 and "upload" not in message


def test_bad_upload_timeout_is_invalid_input(tmp_path: Path, endpoint: SilentEndpoint) -> None:
    proc = _start(tmp_path, _env(endpoint, tmp_path, SYNAPSE_UPLOAD_TIMEOUT="soon"))
    stdout, _ = proc.communicate(json.dumps({"titles": ["Hello World"]}), timeout=60)
    assert proc.returncode == 2, stdout[-2000:]
    assert "SYNAPSE_UPLOAD_TIMEOUT" in stdout and not endpoint.connected.is_set()


# -- item 10: large results -------------------------------------------------------------------------------


def test_large_result_is_a_short_event_and_whole_in_result_json(tmp_path: Path) -> None:
    titles = [f"A fairly long title number {i} about sharded batch inference on clusters" for i in range(2000)]
    out = subprocess.run(
        [sys.executable, "-m", "synapse_runtime", "run", "--plugin", str(ROOT / "plugins" / "text-tools"),
         "--action", "slugify", "--params", "-", "--output", str(tmp_path / "out")],
        input=json.dumps({"titles": titles}), capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("SYNAPSE_")}, "SYNAPSE_GPU_PROBE": "0"},
    )
    assert out.returncode == 0, out.stdout[-2000:]
    lines = out.stdout.splitlines()
    assert max(len(line.encode()) for line in lines) < LINE_LIMIT
    (event,) = [json.loads(line) for line in lines if json.loads(line)["type"] == "result"]
    assert event["truncated"] is True
    assert event["omitted"]["slugs"]["length"] == 2000 and event["omitted"]["slugs"]["type"] == "list"
    assert event["result_file"] == str(tmp_path / "out" / "result.json")
    doc = json.loads((tmp_path / "out" / "result.json").read_text())
    assert len(doc["result"]["slugs"]) == 2000  # the whole result is where the event says


def test_result_event_keeps_small_results_whole_and_small_fields_of_large_ones() -> None:
    small = {"accuracy": 0.97, "checkpoint": "/mnt/output/checkpoint"}
    assert result_event(small, Path("/out")) == {"result": small}
    big = {"processed_count": 5000, "success": True, "results": [{"prediction": i % 10} for i in range(5000)]}
    event = result_event(big, Path("/out"))
    assert event["result"] == {"processed_count": 5000, "success": True}
    assert event["omitted"]["results"]["length"] == 5000
    many = {f"metric_{i}": i * 1.5 for i in range(3000)}  # many small fields
    event = result_event(many, None)
    assert len(json.dumps(event)) <= RESULT_EVENT_LIMIT and event["result_file"] is None
    assert len(json.dumps(result_event(list(range(10000)), Path("/out")))) <= RESULT_EVENT_LIMIT


def test_backend_reporter_still_gets_the_whole_result_redacted() -> None:
    """The job record on the backend held the whole result before the event was summarised: it still does."""
    from synapse_runtime.events import EventWriter, Redactor

    class Reporter:
        def __init__(self) -> None:
            self.results: list = []

        def handle(self, event: dict) -> None:
            if event["type"] == "result":
                self.results.append(event["result"])

    reporter = Reporter()
    read_fd, write_fd = os.pipe()
    writer = EventWriter(write_fd, job_id="job-1", redactor=Redactor({"hunter2-secret-value"}))
    writer.listeners.append(reporter.handle)
    big = {"processed_count": 3000, "results": [{"i": i, "note": "hunter2-secret-value"} for i in range(3000)]}
    event = emit_result(writer, big, Path("/out"), reporter)
    assert event["truncated"] is True
    assert reporter.results[0] == {"processed_count": 3000}  # the stream's summary, then the whole
    assert len(reporter.results[-1]["results"]) == 3000
    assert reporter.results[-1]["results"][0]["note"] == "***"
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as f:
        assert b"hunter2" not in f.read()
