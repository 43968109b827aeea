"""The JSON-lines writer: schema, numbering, timestamps, coalescing, redaction, odd values."""

from __future__ import annotations

import json
import math
import os
import re
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

from synapse_runtime.events import EventWriter, Redactor
from synapse_runtime.events.pretty import PrettyRenderer
from tests.conftest import event_validator


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0
        self.m = 100.0

    def wall(self) -> float:
        return self.t

    def mono(self) -> float:
        return self.m

    def advance(self, s: float) -> None:
        self.t += s
        self.m += s


def make(tmp_path: Path, **kw):
    path = tmp_path / "events.jsonl"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    clock = kw.pop("clock", Clock())
    writer = EventWriter(fd, job_id="job-1", clock=clock.wall, monotonic=clock.mono, **kw)

    def lines() -> list[dict]:
        return [json.loads(x) for x in path.read_text().splitlines()]

    return writer, lines, clock


def test_common_fields_and_schema(tmp_path: Path) -> None:
    w, lines, clock = make(tmp_path)
    clock.t = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc).timestamp()
    w.emit("event", {"event": "e", "data": {"a": 1}, "file": None})
    w.emit("message", {"message": "hi", "context": "info"})
    w.close("end", {"status": "succeeded", "exit_code": 0, "duration_s": 0.1})
    out = lines()
    assert [e["seq"] for e in out] == [0, 1, 2]
    assert out[0]["ts"] == "2026-01-02T03:04:05.678Z"
    assert all(e["v"] == 1 and e["job_id"] == "job-1" for e in out)
    for e in out:
        assert not list(event_validator().iter_errors(e))


def test_after_close_nothing_is_written(tmp_path: Path) -> None:
    w, lines, _ = make(tmp_path)
    w.close("end", {"status": "failed", "exit_code": 1, "duration_s": 0.0})
    w.emit("message", {"message": "late", "context": "info"})
    w.progress(1, 2)
    assert [e["type"] for e in lines()] == ["end"]


def test_progress_coalescing_keeps_first_last_and_final_state(tmp_path: Path) -> None:
    w, lines, clock = make(tmp_path, progress_interval=0.2)
    for i in range(1, 1001):
        w.progress(i, 1000, "train")
        clock.advance(0.0001)  # 1000 updates in 0.1 s
    w.close("end", {"status": "succeeded", "exit_code": 0, "duration_s": 0.1})
    progress = [e for e in lines() if e["type"] == "progress"]
    assert progress[0]["current"] == 1
    assert progress[-1]["current"] == 1000 and progress[-1]["percent"] == 100.0
    assert len(progress) <= 3


def test_pending_progress_is_flushed_at_close(tmp_path: Path) -> None:
    w, lines, clock = make(tmp_path, progress_interval=10)
    w.progress(1, 10)
    w.progress(5, 10)  # suppressed: within the interval
    w.close("end", {"status": "succeeded", "exit_code": 0, "duration_s": 0.0})
    progress = [e for e in lines() if e["type"] == "progress"]
    assert [p["current"] for p in progress] == [1, 5]


def test_progress_rate_is_bounded_per_category(tmp_path: Path) -> None:
    w, lines, clock = make(tmp_path, progress_interval=0.2)
    for i in range(1, 101):  # 10 s of updates at 10/s, two categories
        w.progress(i, 200, "a")
        w.progress(i, 200, "b")
        clock.advance(0.1)
    w.close()
    by_cat = {"a": 0, "b": 0}
    for e in lines():
        by_cat[e["category"]] += 1
    assert 30 <= by_cat["a"] <= 55 and 30 <= by_cat["b"] <= 55  # at most ~5 lines/s each


def test_background_flush_writes_a_stalled_update(tmp_path: Path) -> None:
    w, lines, clock = make(tmp_path, progress_interval=0.05, clock=Clock())
    w._monotonic = __import__("time").monotonic  # real time for the flusher thread
    w.progress(1, 10)
    w.progress(2, 10)  # pending
    deadline = __import__("time").monotonic() + 2
    while __import__("time").monotonic() < deadline and len(lines()) < 2:
        __import__("time").sleep(0.01)
    assert [e["current"] for e in lines()] == [1, 2]
    w.close()


def test_a_pending_value_older_than_a_written_one_is_never_written(tmp_path: Path) -> None:
    """The lock-free fast path leaves a pending value; a later value written directly supersedes it."""
    w, lines, clock = make(tmp_path, progress_interval=10)
    w.progress(1, 10)
    w.progress(5, 10)  # pending (fast path)
    clock.advance(11)
    w.progress(6, 10)  # due: written now, and 5 is dropped
    w.flush_progress()
    w.progress(7, 10)  # pending
    w.close()
    assert [e["current"] for e in lines() if e["type"] == "progress"] == [1, 6, 7]


def test_redaction_of_raw_and_json_escaped_secrets(tmp_path: Path) -> None:
    secret = 'pa"ss\\word-123'
    w, lines, _ = make(tmp_path, redactor=Redactor([secret, "tok-abcdef"]))
    w.emit("event", {"event": "x", "data": {"v": secret, "t": "Bearer tok-abcdef!"}, "file": None})
    raw = (tmp_path / "events.jsonl").read_text()
    assert "tok-abcdef" not in raw and "word-123" not in raw
    assert lines()[0]["data"] == {"v": "***", "t": "Bearer ***!"}


def test_short_values_are_not_redacted() -> None:
    assert Redactor(["ab"])("ab cd") == "ab cd"


def test_non_json_values_are_encoded(tmp_path: Path) -> None:
    w, lines, _ = make(tmp_path)
    w.emit("event", {"event": "x", "data": {"p": Path("/a/b"), "nan": math.nan, "inf": math.inf,
                                             "when": datetime(2020, 1, 1), "s": {3}, "b": b"hi"}, "file": None})
    data = lines()[0]["data"]
    assert data == {"p": "/a/b", "nan": None, "inf": None, "when": "2020-01-01T00:00:00", "s": [3], "b": "aGk="}


def test_unicode_passes_through(tmp_path: Path) -> None:
    w, lines, _ = make(tmp_path)
    w.emit("message", {"message": "한국어 ✓ \u2028 line", "context": "info"})
    assert lines()[0]["message"] == "한국어 ✓ \u2028 line"


def test_thread_safety_no_interleaving(tmp_path: Path) -> None:
    w, lines, _ = make(tmp_path)

    def spam(n: int) -> None:
        for i in range(500):
            w.emit("event", {"event": f"t{n}", "data": {"i": i, "pad": "x" * 300}, "file": None})

    threads = [threading.Thread(target=spam, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out = lines()
    assert len(out) == 2000
    assert [e["seq"] for e in out] == list(range(2000))


def test_broken_pipe_does_not_raise(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader went away (`| head`): the action keeps running, the writer stops writing at once
    (one failed write, not one per event), listeners still see every event, and `end` still closes."""
    r, wfd = os.pipe()
    os.close(r)
    writes: list[int] = []
    real_write = os.write

    def counting_write(fd: int, data: bytes) -> int:
        writes.append(fd)
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", counting_write)
    w = EventWriter(wfd, job_id=None)
    seen: list[str] = []
    w.listeners.append(lambda e: seen.append(e["type"]))
    w.emit("message", {"message": "x", "context": "info"})  # EPIPE: swallowed
    assert writes == [wfd] and w._broken
    w.emit("message", {"message": "y", "context": "info"})
    w.progress(1, 2, "train")
    w.close("end", {"status": "succeeded", "exit_code": 0, "duration_s": 0})
    assert writes == [wfd]  # nothing more was attempted after the pipe broke
    assert seen == ["message", "message", "progress", "end"] and w.seq == 4 and w.closed
    os.close(wfd)


def test_listeners_get_dicts_and_failures_are_contained(tmp_path: Path) -> None:
    w, lines, _ = make(tmp_path)
    seen = []
    w.listeners.append(seen.append)
    w.listeners.append(lambda e: 1 / 0)
    w.emit("message", {"message": "m", "context": "info"})
    assert seen and seen[0]["type"] == "message" and seen[0]["seq"] == 0
    assert len(lines()) == 1


def test_pretty_renderer_renders_every_type(tmp_path: Path) -> None:
    w, _, _ = make(tmp_path, renderer=PrettyRenderer(color=False))
    w.emit("start", {"plugin": "p", "action": "a", "runtime_version": "0", "python": "3", "gpus": []})
    w.progress(5, 10, "train")
    w.emit("metrics", {"category": "train", "values": {"loss": 0.123456}})
    w.emit("error", {"code": 2, "error_type": "ValidationError", "message": "bad", "hint": "fix it",
                     "details": {"errors": [{"loc": "epochs", "msg": "too big"}]}})
    w.close("end", {"status": "failed", "exit_code": 2, "duration_s": 1.5})
    text = (tmp_path / "events.jsonl").read_text()
    assert "▶ p · a" in text and "50.0% (5/10)" in text and "loss=0.1235" in text
    assert "how to fix: fix it" in text and "- epochs: too big" in text and "failed in 1.50s (exit 2)" in text
    assert not re.search(r"^\{", text, re.M)
