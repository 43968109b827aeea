"""events/shapes.py is the one owner of event shapes, signals.py of process signals (issue 21).

The constructors are checked against schema.json (every type has one, each builds a valid event);
the ownership is checked in the source: an ``emit`` with an inline dict, a hard-coded ``"v": 1``, a
second percent formula, or a signal handler installed outside signals.py fails here."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from synapse_runtime.events import SCHEMA_PATH, SCHEMA_VERSION, shapes
from tests.conftest import event_validator

PKG = Path(__file__).resolve().parents[2] / "synapse_runtime"

SAMPLES = {
    "start": shapes.start("p", "a", "0.1", "3.11.7", [], device="cpu", device_note="no GPU"),
    "progress": shapes.progress(1, 3, None),
    "metrics": shapes.metrics("train", {"loss": 0.5}),
    "event": shapes.event("step", {"x": 1}, Path("/tmp/f"), "s1"),
    "message": shapes.message("hi", "info", level="debug"),
    "dev_event": shapes.dev_event("dev", ["not", "a", "mapping"]),
    "log": shapes.log("INFO", "root", "text", "Traceback"),
    "output": shapes.output("stdout", "line"),
    "download": shapes.download("s3://b/k", 5, 10, False, "boto3"),
    "upload": shapes.upload("s3://b/out/", 5, None),
    "result": shapes.result({"n": 1}, truncated=True, omitted={}, result_file=None),
    "error": shapes.error(1, "Boom", "it broke", {"location": None}, hint=None),
    "end": shapes.end("succeeded", 0, 0.25),
}


def test_every_schema_type_has_a_constructor() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    assert tuple(schema["properties"]["type"]["enum"]) == shapes.EVENT_TYPES
    assert set(SAMPLES) == set(shapes.EVENT_TYPES)
    assert schema["properties"]["v"]["const"] == SCHEMA_VERSION


@pytest.mark.parametrize("type", shapes.EVENT_TYPES)
def test_each_constructor_builds_a_valid_event(type: str) -> None:
    event = shapes.envelope(type, 0, None, SAMPLES[type], t=1_700_000_000.25)
    errors = sorted(event_validator().iter_errors(event), key=str)
    assert not errors, f"{type}: {errors[0].message}"


def test_constructor_details() -> None:
    assert shapes.percent(1, 3) == 33.33 and shapes.percent(5, 0) == 0.0
    assert shapes.progress(1, 3, "c")["percent"] == 33.33
    assert shapes.dev_event("d", [1])["data"] is None and "step" not in shapes.dev_event("d", {})
    assert shapes.dev_event("d", {}, None, with_step=True)["step"] is None
    assert shapes.event("e", 1, Path("/x"))["file"] == "/x"
    assert "via" not in shapes.download("u", 1, 2, True) and "cached" not in shapes.upload("u", 1, 2)
    assert shapes.timestamp(1_700_000_000.9996) == "2023-11-14T22:13:20.999Z"  # never .1000
    assert shapes.timestamp(1_700_000_000.123) == "2023-11-14T22:13:20.123Z"


def _sources() -> list[tuple[str, str]]:
    return [(str(p.relative_to(PKG)), p.read_text(encoding="utf-8")) for p in sorted(PKG.rglob("*.py"))]


def test_events_are_built_by_shapes_only() -> None:
    inline = re.compile(r"""\.(emit|close)\(\s*["']\w+["'],\s*\{""")
    found = [name for name, text in _sources() if inline.search(text)]
    assert not found, f"an event built inline instead of with events/shapes.py: {found}"
    version = re.compile(r"""["']v["']\s*:\s*1\b|"v":1""")
    found = [name for name, text in _sources() if version.search(text) and name != "storage/cache.py"]  # its own v
    assert not found, f"the schema version hard-coded instead of shapes.SCHEMA_VERSION: {found}"
    writer = (PKG / "events" / "writer.py").read_text(encoding="utf-8")
    assert '"v":1' not in writer and "SCHEMA_VERSION" in writer
    percent = re.compile(r"current\s*\*\s*100")
    found = [name for name, text in _sources() if percent.search(text)]
    assert found == ["events/shapes.py"], found
    assert not [name for name, text in _sources() if ".000Z" in text]


def test_signals_have_one_owner() -> None:
    handlers = re.compile(r"signal\.signal\(|add_signal_handler\(")
    found = [name for name, text in _sources() if handlers.search(text)]
    assert found == ["contract/signals.py"], found
    peeking = [name for name, text in _sources() if re.search(r"sys\.modules(\.get)?[\[(]\s*[\"']synapse_runtime", text)]
    assert not peeking, peeking


def test_rollback_guard_holds_a_signal_until_the_rollback_ends() -> None:
    from synapse_runtime import signals
    from synapse_runtime.errors import Cancelled

    assert signals.defer_cancellation(15) is False  # no rollback running: the handler raises at once
    done = []
    with pytest.raises(Cancelled) as ei:
        with signals.rollback_guard():
            assert signals.defer_cancellation(15) is True
            assert signals.defer_cancellation(2) is True  # the first signal is the one raised
            done.append("rolled back")
    assert done == ["rolled back"] and ei.value.signum == 15
    with signals.rollback_guard():
        pass  # state was reset: nothing raised
