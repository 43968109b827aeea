"""JobReporter: the job's status sequence on the (fake) backend for succeeded, failed and cancelled
runs, throttling, log batching, and reporting that survives a dead or hostile backend."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import pytest

from synapse_runtime.backend.client import BackendClient
from synapse_runtime.backend.reporter import JobReporter
from tests.backend.backend_fake import TOKEN


class Stream:
    """Builds contract-shaped events (v, ts, seq, type, job_id) for one run."""

    def __init__(self, job_id: str = "job-1") -> None:
        self.job_id = job_id
        self.seq = itertools.count()

    def __call__(self, type_: str, **fields: Any) -> dict[str, Any]:
        return {"v": 1, "ts": "2026-03-01T12:00:00.123Z", "seq": next(self.seq), "type": type_,
                "job_id": self.job_id, **fields}

    def progress(self, current: int, total: int, category: str | None = None) -> dict[str, Any]:
        return self("progress", current=current, total=total, percent=round(current * 100 / total, 2),
                    category=category)


def client_for(url: str, **kw: Any) -> BackendClient:
    kw.setdefault("access_token", TOKEN)
    kw.setdefault("timeout", 1.0)
    kw.setdefault("retries", 1)
    kw.setdefault("backoff", 0.01)
    return BackendClient(url, **kw)


def reporter_for(url: str, warnings: list[str] | None = None, **kw: Any) -> JobReporter:
    kw.setdefault("interval", 0.2)
    kw.setdefault("log_interval", 0.2)
    warn = warnings.append if warnings is not None else None
    return JobReporter(client_for(url), "job-1", warn=warn, **kw)


def run_stream(reporter: JobReporter, events: list[dict[str, Any]], close_timeout: float = 5.0) -> None:
    for event in events:
        reporter.handle(event)
    reporter.close(timeout=close_timeout)


# -- the status sequence ----------------------------------------------------------------------

def test_succeeded_run_sequence(backend):
    s = Stream()
    warnings: list[str] = []
    events = [s("start", plugin="p", action="infer", runtime_version="0", python="3.11", gpus=[])]
    events += [s.progress(i, 1000, "inference") for i in range(1, 1001)]
    events += [s("metrics", category="inference", values={"accuracy": 0.9, "loss": 0.1})]
    events += [s("message", message="done", context="success")]
    events += [s("result", result={"predictions": [1, 2]}), s("end", status="succeeded", exit_code=0, duration_s=1.0)]
    run_stream(reporter_for(backend.url, warnings), events)

    patches = backend.patches()
    assert patches[0] == {"status": "RUNNING"}
    assert 2 <= len(patches) <= 4, patches  # RUNNING, maybe one throttled snapshot, the final
    final = patches[-1]
    assert final["status"] == "SUCCEEDED"
    assert final["result"] == {"predictions": [1, 2]}
    assert final["progress_record"]["record"]["steps"]["inference"]["percent"] == 100.0
    current = final["progress_record"]["current_progress"]
    assert current["step"] == "inference" and current["percent"] == 100.0 and current["overall"] == 100.0
    assert current["order"] == 0 and isinstance(current["time_elapsed"], int)
    assert final["metrics_record"] == {"record": {"steps": {"inference": {"accuracy": 0.9, "loss": 0.1}}}}
    assert all("status" not in p for p in patches[1:-1])  # no status between RUNNING and the final
    assert backend.jobs["job-1"]["status"] == "SUCCEEDED"
    assert warnings == []
    (log,) = backend.logs
    assert log == {"event": "message", "data": {"content": "done"}, "level": "success",
                   "datetime": "2026-03-01T12:00:00.123+00:00", "job": "job-1", "step": "inference"}


def test_failed_run_reports_error_message(backend):
    s = Stream()
    events = [s("start"), s.progress(3, 10), s("error", code=1, error_type="ExecutionError",
                                                 message="model exploded", details=None),
              s("end", status="failed", exit_code=1, duration_s=0.1)]
    run_stream(reporter_for(backend.url), events)
    patches = backend.patches()
    assert patches[0] == {"status": "RUNNING"}
    final = patches[-1]
    assert final["status"] == "FAILED" and final["result"] == {"error": "model exploded"}
    # Without categories, percent and time_remaining sit directly in the record.
    assert final["progress_record"]["record"]["percent"] == 30.0
    assert "time_remaining" in final["progress_record"]["record"]
    assert final["progress_record"]["current_progress"]["step"] is None
    assert backend.jobs["job-1"]["status"] == "FAILED"


def test_cancelled_run_reports_stopped(backend):
    s = Stream()
    events = [s("start"), s.progress(1, 4, "inference"),
              s("error", code=143, error_type="Cancelled", message="cancelled by signal 15", details=None),
              s("end", status="cancelled", exit_code=143, duration_s=0.1)]
    run_stream(reporter_for(backend.url), events)
    patches = backend.patches()
    assert [p.get("status") for p in patches if "status" in p] == ["RUNNING", "STOPPED"]
    assert patches[-1]["result"] == {"error": "cancelled by signal 15"}
    assert backend.jobs["job-1"]["status"] == "STOPPED"


def test_non_dict_result_is_wrapped_and_none_result_omitted(backend):
    s = Stream()
    run_stream(reporter_for(backend.url), [s("start"), s("result", result=42), s("end", status="succeeded", exit_code=0)])
    assert backend.patches()[-1] == {"status": "SUCCEEDED", "result": {"result": 42}}


def test_close_without_end_flushes_records_but_sets_no_status(backend):
    s = Stream()
    reporter = reporter_for(backend.url, interval=30)
    reporter.handle(s("start"))
    time.sleep(0.1)
    reporter.handle(s.progress(1, 2, "train"))
    reporter.handle(s.progress(2, 2, "train"))  # held back: the interval is 30 s
    reporter.close(timeout=3)
    patches = backend.patches()
    assert patches[0] == {"status": "RUNNING"}
    assert patches[-1]["progress_record"]["record"]["steps"]["train"]["percent"] == 100.0
    assert all(p.get("status") in (None, "RUNNING") for p in patches)


# -- throttling and batching ------------------------------------------------------------------

def test_progress_is_throttled_newest_wins(backend):
    s = Stream()
    reporter = reporter_for(backend.url, interval=0.2)
    reporter.handle(s("start"))
    started = time.monotonic()
    i = 0
    while time.monotonic() - started < 0.9:
        i += 1
        reporter.handle(s.progress(min(i, 10**6), 10**6, "train"))
        time.sleep(0.0005)
    reporter.handle(s("end", status="succeeded", exit_code=0))
    reporter.close(timeout=5)

    records = [r for r in backend.calls("PATCH") if "progress_record" in r.body and "status" not in r.body]
    assert i > 300
    assert 2 <= len(records) <= 7, len(records)  # about one per 0.2 s, not one per event
    gaps = [b.t - a.t for a, b in zip(records, records[1:])]
    assert all(gap >= 0.15 for gap in gaps), gaps
    final = backend.patches()[-1]
    assert final["status"] == "SUCCEEDED"
    assert final["progress_record"]["record"]["steps"]["train"]["percent"] == round(i * 100 / 10**6, 2)


def test_logs_are_batched_in_upstream_shape(backend):
    s = Stream()
    events = [s("start"), s.progress(1, 2, "preprocess")]
    events += [s("message", message=f"m{i}", context="info") for i in range(450)]
    events += [s("log", level="WARNING", logger="lib", message="careful"),
               s("output", stream="stderr", text="oops"),
               s("event", event="visualization", data={"k": 1}, file=None),
               s("end", status="succeeded", exit_code=0)]
    run_stream(reporter_for(backend.url, log_interval=10), events)
    posts = backend.calls("POST", "/logs/")
    assert all(len(p.body) <= 200 for p in posts if isinstance(p.body, list))
    assert 3 <= len(posts) <= 5
    assert len(backend.logs) == 453
    assert [e["data"]["content"] for e in backend.logs[:450]] == [f"m{i}" for i in range(450)]
    log, output, visual = backend.logs[450:]
    assert log["event"] == "log" and log["level"] == "warning" and log["data"] == {"content": "careful", "logger": "lib"}
    assert output["event"] == "output" and output["data"] == {"content": "oops", "stream": "stderr"}
    assert visual["event"] == "visualization" and visual["data"] == {"k": 1} and "file" not in visual
    assert all(e["job"] == "job-1" and e["step"] == "preprocess" for e in backend.logs)
    # Logs reach the backend before the job turns terminal.
    last_post = posts[-1].t
    final_patch = backend.calls("PATCH")[-1]
    assert final_patch.body["status"] == "SUCCEEDED" and final_patch.t >= last_post


def test_log_step_is_the_events_own_step_when_it_carries_one(backend):
    """A step that logs before its first progress (or never reports any) is not attributed to the
    step before it; an event that says it is outside any step (null) gets no step."""
    s = Stream()
    events = [s("start"), s.progress(1, 1, "initialize"),
              s("message", message="scanning", context="info", step="scan"),
              s("message", message="no step", context="info", step=None),
              s("message", message="legacy", context="info"),  # no `step`: the last progress category
              s("end", status="succeeded", exit_code=0)]
    run_stream(reporter_for(backend.url), events)
    steps = {e["data"]["content"]: e.get("step", "<none>") for e in backend.logs}
    assert steps == {"scanning": "scan", "no step": "<none>", "legacy": "initialize"}


def test_set_steps_lists_every_step_in_the_first_progress_record(backend):
    s = Stream()
    reporter = reporter_for(backend.url, interval=0.05)
    reporter.handle(s("start"))
    reporter.set_steps({"initialize": 10, "upload": 90}, {"initialize": 0, "scan": 1, "upload": 2})
    reporter.handle(s.progress(1, 2, "initialize"))
    deadline = time.monotonic() + 10  # the first record is sent by the reporter's thread: wait for it, not a fixed time
    while not any("progress_record" in p for p in backend.patches()) and time.monotonic() < deadline:
        time.sleep(0.02)
    reporter.handle(s.progress(2, 2, "initialize"))
    reporter.handle(s.progress(1, 2, "upload"))
    run_stream(reporter, [s("end", status="succeeded", exit_code=0)])
    records = [p["progress_record"] for p in backend.patches() if "progress_record" in p]
    first = records[0]["record"]["steps"]
    assert first["initialize"] == {"proportion": 10, "order": 0, "percent": 50.0, "time_remaining": first["initialize"]["time_remaining"]}
    assert first["upload"] == {"proportion": 90, "order": 2}
    assert records[0]["current_progress"]["overall"] == 5.0
    assert records[-1]["current_progress"]["overall"] == 10 + 45.0


def test_wait_running_holds_the_start_until_running_is_sent_and_no_longer_than_asked(backend):
    backend.fail("PATCH", "/jobs/job-1/", 200, body={"id": "job-1"}, delay=0.4)
    s = Stream()
    reporter = reporter_for(backend.url)
    reporter.handle(s("start"))
    t0 = time.monotonic()
    assert reporter.wait_running(5.0)
    assert 0.3 <= time.monotonic() - t0 < 3 and len(backend.patches()) == 1
    run_stream(reporter, [s("end", status="succeeded", exit_code=0)])

    backend.fail("PATCH", "/jobs/job-1/", 200, body={"id": "job-1"}, delay=2.0)
    slow = reporter_for(backend.url, interval=0.05)
    slow.handle(s("start"))
    t0 = time.monotonic()
    assert slow.wait_running(0.2) is False  # a slow backend delays the start by the bound only
    assert time.monotonic() - t0 < 1.0
    slow.close(timeout=5)


def test_log_file_is_sent_inline_as_data_uri(backend, tmp_path):
    image = tmp_path / "plot.png"
    image.write_bytes(b"\x89PNG fake")
    s = Stream()
    run_stream(reporter_for(backend.url), [s("start"), s("event", event="visualization", data={}, file=str(image)),
                                           s("end", status="succeeded", exit_code=0)])
    (entry,) = backend.logs
    assert entry["file"].startswith("data:image/png;base64,")


def test_logs_are_flushed_after_log_interval_without_end(backend):
    s = Stream()
    reporter = reporter_for(backend.url, log_interval=0.2)
    reporter.handle(s("message", message="hello", context="info"))
    deadline = time.monotonic() + 3
    while not backend.logs and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [e["data"]["content"] for e in backend.logs] == ["hello"]
    reporter.close(timeout=2)


# -- failure behaviour ------------------------------------------------------------------------

def full_stream() -> list[dict[str, Any]]:
    s = Stream()
    events = [s("start")] + [s.progress(i, 100, "inference") for i in range(1, 101)]
    events += [s("message", message=f"m{i}", context="info") for i in range(20)]
    events += [s("result", result={"ok": True}), s("end", status="succeeded", exit_code=0)]
    return events


def test_dead_backend_never_raises_and_warns_once_per_kind(dead_url):
    warnings: list[str] = []
    reporter = reporter_for(dead_url, warnings)
    started = time.monotonic()
    for event in full_stream():
        reporter.handle(event)  # must not raise
    handled = time.monotonic() - started
    reporter.close(timeout=3)
    assert handled < 0.5
    assert time.monotonic() - started < 4
    assert warnings, "a dead backend must be reported"
    assert len(warnings) == len(set(warnings)) <= 3
    assert any("update_job" in w for w in warnings)
    assert all("cannot reach" in w and "run continues" in w for w in warnings if "update_job" in w)
    assert not any(TOKEN in w for w in warnings)


def test_dead_backend_does_not_hold_up_the_end_of_the_run(dead_url):
    """Once the backend is known to be away, requests fail fast: the production retry budget
    (3 retries, 0.5 s backoff) would otherwise add several seconds to every run's end."""
    warnings: list[str] = []
    reporter = JobReporter(BackendClient(dead_url, access_token=TOKEN, retries=3, backoff=0.5), "job-1",
                           interval=0.05, log_interval=0.05, warn=warnings.append)
    started = time.monotonic()
    run_stream(reporter, full_stream(), close_timeout=10)
    assert time.monotonic() - started < 2.5
    assert warnings and not any("did not finish" in w for w in warnings)


def test_failed_running_is_repeated_with_the_next_snapshot(backend):
    backend.fail("PATCH", "/jobs/job-1/", 503, times=2)  # both attempts of the RUNNING PATCH
    s = Stream()
    reporter = reporter_for(backend.url, [], interval=0.05)
    reporter.handle(s("start"))
    time.sleep(0.3)
    reporter.handle(s.progress(1, 2, "train"))
    time.sleep(0.3)
    reporter.close(timeout=3)
    patches = backend.patches()
    assert patches[:2] == [{"status": "RUNNING"}, {"status": "RUNNING"}]  # the failed attempts
    assert patches[2]["status"] == "RUNNING" and "progress_record" in patches[2]
    assert backend.jobs["job-1"]["status"] == "RUNNING"


def test_outage_then_recovery_still_delivers_final_status(backend):
    backend.fail("PATCH", "/jobs/job-1/", 503, times=2)  # RUNNING fails (2 attempts), the rest succeeds
    warnings: list[str] = []
    run_stream(reporter_for(backend.url, warnings), full_stream())
    assert backend.jobs["job-1"]["status"] == "SUCCEEDED"
    assert backend.patches()[-1]["result"] == {"ok": True}
    assert len(warnings) == 1 and "503" in warnings[0]


def test_auth_failure_stops_reporting_after_one_warning(backend):
    warnings: list[str] = []
    reporter = JobReporter(client_for(backend.url, access_token="bad-token-xyz-123"), "job-1", interval=0.05,
                           log_interval=0.05, warn=warnings.append)
    run_stream(reporter, full_stream())
    assert len(backend.calls()) == 1  # the RUNNING PATCH; nothing after the 401
    assert len(warnings) == 1
    assert "SYNAPSE_ACCESS_TOKEN" in warnings[0] and "bad-token-xyz-123" not in warnings[0]


def test_unknown_job_stops_reporting(backend):
    warnings: list[str] = []
    reporter = JobReporter(client_for(backend.url), "no-such-job", interval=0.05, warn=warnings.append)
    run_stream(reporter, full_stream())
    assert len(backend.calls("PATCH")) == 1
    assert len(warnings) == 1 and "job no-such-job not found" in warnings[0]


def test_echoed_token_is_redacted_in_warnings(backend):
    backend.fail("PATCH", "/jobs/job-1/", 400, times=100, body={"detail": f"bad Synapse-Access-Token: Token {TOKEN}"})
    warnings: list[str] = []
    run_stream(reporter_for(backend.url, warnings), full_stream())
    assert warnings and all(TOKEN not in w for w in warnings)
    assert any("***" in w for w in warnings)


def test_handle_does_not_block_on_a_slow_backend(backend):
    backend.fail("PATCH", "/jobs/job-1/", 200, times=100, delay=0.5)
    s = Stream()
    reporter = reporter_for(backend.url, interval=0.0)
    started = time.monotonic()
    reporter.handle(s("start"))
    for i in range(1, 20_001):
        reporter.handle(s.progress(i, 20_000, "inference"))
    elapsed = time.monotonic() - started
    reporter.close(timeout=0.2)  # gives up quickly, warns, never raises
    assert elapsed < 1.0, elapsed
    assert len(backend.calls("PATCH")) <= 3


def test_handle_from_many_threads(backend):
    s = Stream()
    reporter = reporter_for(backend.url, log_interval=10)
    reporter.handle(s("start"))

    def produce(n: int) -> None:
        for i in range(100):
            reporter.handle(s("message", message=f"t{n}-{i}", context="info"))

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reporter.handle(s("end", status="succeeded", exit_code=0))
    reporter.close(timeout=5)
    assert sorted(e["data"]["content"] for e in backend.logs) == sorted(f"t{n}-{i}" for n in range(8) for i in range(100))


def test_log_buffer_is_bounded_dropping_the_oldest(backend):
    warnings: list[str] = []
    s = Stream()
    reporter = JobReporter(client_for(backend.url), "job-1", interval=10, log_interval=60,
                           log_batch_size=1000, max_pending_logs=50, warn=warnings.append)
    for i in range(500):
        reporter.handle(s("message", message=f"m{i}", context="info"))
    reporter.handle(s("end", status="succeeded", exit_code=0))
    reporter.close(timeout=3)
    assert [e["data"]["content"] for e in backend.logs] == [f"m{i}" for i in range(450, 500)]
    assert any("450 log entries were not sent" in w for w in warnings), warnings


@pytest.mark.parametrize("bad", [{}, {"type": "progress"}, {"type": "progress", "current": "x", "total": None},
                                 {"type": "metrics", "values": 3}, None])
def test_malformed_events_never_raise(backend, bad):
    """A malformed event is dropped without a trace: no exception, no warning, and the reporter
    still reports the run around it (RUNNING, the progress record, the final status)."""
    s = Stream()
    warnings: list[str] = []
    reporter = reporter_for(backend.url, warnings)
    reporter.handle(s("start"))
    reporter.handle(bad)  # type: ignore[arg-type]
    reporter.handle(s.progress(3, 4, "train"))
    reporter.handle(s("result", result={"ok": True}))
    reporter.handle(s("end", status="succeeded", exit_code=0))
    reporter.close(timeout=3)
    assert not reporter._thread.is_alive()
    assert warnings == []
    statuses = [p["status"] for p in backend.patches("job-1") if "status" in p]
    assert statuses[0] == "RUNNING" and statuses[-1] == "SUCCEEDED"
    final = backend.patches("job-1")[-1]
    assert final["result"] == {"ok": True}
    assert final["progress_record"]["record"]["steps"]["train"]["percent"] == 75.0
