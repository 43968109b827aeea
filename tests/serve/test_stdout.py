"""serve/stdout.py: what a served plugin prints becomes output events in-process, line by line."""

from __future__ import annotations

import io
from typing import Any

from synapse_runtime.events.capture import MAX_LINE
from synapse_runtime.serve.stdout import LineEmitter


def emitter() -> tuple[LineEmitter, list[tuple[str, dict[str, Any]]]]:
    got: list[tuple[str, dict[str, Any]]] = []
    return LineEmitter("stdout", lambda t, f: got.append((t, f)), io.StringIO()), got


def test_complete_lines_are_events_and_a_partial_line_waits_for_close() -> None:
    out, got = emitter()
    print("one", file=out, flush=True)
    out.write("two\r\nthr")
    assert got == [("output", {"stream": "stdout", "text": "one"}), ("output", {"stream": "stdout", "text": "two"})]
    out.write("ee")
    assert len(got) == 2
    out.close()
    assert got[-1] == ("output", {"stream": "stdout", "text": "three"})


def test_a_line_longer_than_the_limit_is_split_as_the_fd_capture_splits_it() -> None:
    out, got = emitter()
    out.write("x" * (2 * MAX_LINE + 5) + "\n")
    assert [len(f["text"]) for _, f in got] == [MAX_LINE, MAX_LINE, 5]


def test_bytes_are_refused_as_a_text_stream_refuses_them() -> None:
    out, _ = emitter()
    try:
        out.write(b"raw")  # type: ignore[arg-type]
    except TypeError as exc:
        assert "bytes" in str(exc)
    else:
        raise AssertionError("bytes were accepted")
