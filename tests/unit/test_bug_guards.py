"""Issue 22, item 4: realistic bugs a mutation probe reintroduced without any non-Docker test failing.

Each test here fails when its bug is put back by hand (the issue's closing note lists which mutation
each one catches); the transport's POST-after-timeout guard lives with the other transport tests in
tests/backend/test_client.py.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from synapse_runtime.contract.cancellation import SignalCanceller
from synapse_runtime.actions.env import read_dotenv
from synapse_runtime.errors import Cancelled, ValidationError
from synapse_runtime.events import EventWriter, Redactor
from synapse_runtime.events.redact import is_secret_key, secret_values
from synapse_runtime.contract.inputs import resolve_params
from synapse_runtime.contract.merge import merge_results
from synapse_runtime.contract.sharding import ShardSpec

# -- merge.py ----------------------------------------------------------------------------------------


def _write_shards(root: Path, ranges: list[tuple[int, int]], total: int, **fields: object) -> None:
    """Shard outputs as the runner writes them, with the given slices (forged where a test needs it)."""
    for index, (start, stop) in enumerate(ranges):
        spec = ShardSpec(index, len(ranges))
        info = {"index": index, "count": len(ranges), "key": "inputs", "start": start, "stop": stop, "total": total}
        result = {"results": list(range(start, stop)), "processed_count": stop - start, "shard": info}
        result.update({k: (v(index) if callable(v) else v) for k, v in fields.items()})
        (root / spec.name).mkdir(parents=True)
        (root / spec.name / "result.json").write_text(json.dumps(
            {"status": "succeeded", "result": result, "error": None, "job_id": None, "exit_code": 0}))


def test_merge_refuses_shards_that_stop_short_of_the_total(tmp_path: Path) -> None:
    """Contiguous, in order, one item per input: but 55 of 60 inputs covered. A merge must not call it whole."""
    _write_shards(tmp_path, [(0, 15), (15, 30), (30, 45), (45, 55)], total=60)
    with pytest.raises(ValidationError) as e:
        merge_results(tmp_path)
    assert e.value.exit_code == 2
    assert "do not tile 0..60" in e.value.message
    assert e.value.details["covered_to"] == 55 and e.value.details["total"] == 60
    assert not e.value.details.get("problems")  # no gap or overlap between shards: only the end is short


def test_merge_sums_only_count_fields_not_names_that_end_in_count(tmp_path: Path) -> None:
    """``count`` and ``*_count`` are per-shard tallies; ``discount`` or ``account`` are values like any other."""
    _write_shards(tmp_path, [(0, 3), (3, 6), (6, 10)], total=10,
                  discount=15, count=lambda i: i + 1, account=lambda i: 100 + i)
    merged = merge_results(tmp_path)
    assert merged["processed_count"] == 10 and merged["count"] == 1 + 2 + 3
    assert merged["discount"] == 15  # equal in every shard: kept, not summed to 45
    assert "account" not in merged  # differs between shards: listed per shard, not summed
    assert [p["account"] for p in merged["per_shard"]] == [100, 101, 102]


# -- events/redact.py --------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["db_password", "aws_secret_access_key", "github_token", "Api_Key", "stripe_key",
                                 "x-auth-header"])
def test_secret_key_names_match_whatever_their_case(key: str) -> None:
    assert is_secret_key(key)
    assert secret_values({key: "s3cr3t-value", "db_host": "db.internal"}) == {"s3cr3t-value"}


def test_lower_case_secret_names_are_masked_in_events(tmp_path: Path) -> None:
    env = {"db_password": "hunter2hunter2", "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG", "db_user": "admin"}
    path = tmp_path / "events.jsonl"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        EventWriter(fd, redactor=Redactor(secret_values(env))).emit(
            "message", {"message": f"connect admin:{env['db_password']} key={env['aws_secret_access_key']}"})
    finally:
        os.close(fd)
    event = json.loads(path.read_text())
    assert event["message"] == "connect admin:*** key=***"


def test_a_secret_inside_another_is_masked_whole() -> None:
    """Longest first: masking ``abcd`` before ``abcdefgh`` would leave ``***efgh``, half the long secret."""
    for secrets in (["abcd", "abcdefgh"], ["abcdefgh", "abcd"]):
        redactor = Redactor(secrets)
        assert redactor("pw=abcdefgh short=abcd") == "pw=*** short=***"
        assert json.loads(redactor.json(json.dumps({"m": "pw=abcdefgh short=abcd"}))) == {"m": "pw=*** short=***"}
        redactor = Redactor(["x"])
        redactor.add(secrets)  # values learnt during the run: the same rule
        assert redactor("pw=abcdefgh") == "pw=***"


# -- cancellation.py ---------------------------------------------------------------------------------


def test_a_signal_during_an_event_write_is_raised_after_the_line_is_out(tmp_path: Path) -> None:
    """A real SIGTERM, delivered while the main thread is inside the writer (a listener runs mid-write):
    the line being written still goes out whole with its ``seq``, and then ``Cancelled`` is raised."""
    assert threading.current_thread() is threading.main_thread()  # signal handlers run here only
    state = SimpleNamespace(finalizing=False, cancelled_by=None, extra_signals=[])
    path = tmp_path / "events.jsonl"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    writer = EventWriter(fd)
    canceller = SignalCanceller(state, lambda: writer)
    seen: list[bool] = []

    def mid_write(event: dict) -> None:
        if event["type"] == "message":
            seen.append(writer.writing_in_this_thread())
            signal.raise_signal(signal.SIGTERM)  # the handler runs now, in this thread, mid-write

    writer.listeners.append(mid_write)
    previous = canceller.install()
    try:
        writer.emit("start", {})
        with pytest.raises(Cancelled) as info:
            writer.emit("message", {"message": "half-way", "context": "info"})
    finally:
        SignalCanceller.restore(previous)
        os.close(fd)
    assert seen == [True]
    assert info.value.signum == signal.SIGTERM and state.cancelled_by == signal.SIGTERM
    lines = path.read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [0, 1]  # no seq used without its line
    assert json.loads(lines[1])["message"] == "half-way"


def test_a_signal_outside_a_write_is_raised_at_once(tmp_path: Path) -> None:
    state = SimpleNamespace(finalizing=False, cancelled_by=None, extra_signals=[])
    fd = os.open(tmp_path / "events.jsonl", os.O_WRONLY | os.O_CREAT)
    try:
        canceller = SignalCanceller(state, lambda: EventWriter(fd))
        with pytest.raises(Cancelled):
            canceller(signal.SIGINT, None)
        canceller(signal.SIGTERM, None)  # a second signal while the first is handled: recorded, not raised
    finally:
        os.close(fd)
    assert state.cancelled_by == signal.SIGINT and state.extra_signals == [signal.SIGTERM]


# -- inputs.py ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,text", [
    ("params.json", '{"epochs": 5, "name": "é"}'),
    ("params.yaml", "epochs: 5\nname: é\n"),
    ("params", '{"epochs": 5, "name": "é"}'),  # no extension: JSON by content, the BOM does not hide the brace
])
def test_params_file_with_a_utf8_bom(tmp_path: Path, name: str, text: str) -> None:
    """Windows editors save UTF-8 with a byte-order mark; it is not part of the document."""
    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert resolve_params(str(path), {}).value == {"epochs": 5, "name": "é"}
    assert resolve_params(None, {"SYNAPSE_ACTION_PARAMS_FILE": str(path)}).value == {"epochs": 5, "name": "é"}


# -- env.py ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("line,value", [
    ("URL=http://h/#x", "http://h/#x"),  # a '#' inside a value is part of it
    ("COLOR=#ff0000", "#ff0000"),
    ("PASS=a#b#c", "a#b#c"),
    ("URL=http://h/#x # the callback", "http://h/#x"),  # whitespace then '#': a comment
    ("N=5 # five", "5"),
    ("N=5\t# a tab before the comment", "5"),
    ("N=5   #", "5"),
    ('Q="a # b" # c', "a # b"),  # quoted, then a comment
    ("S='a # b' # c", "a # b"),
    ("EMPTY= # nothing", ""),
])
def test_dotenv_comment_starts_only_after_whitespace(tmp_path: Path, line: str, value: str) -> None:
    path = tmp_path / "job.env"
    path.write_text(line + "\n", encoding="utf-8")
    assert read_dotenv(path) == {line.partition("=")[0]: value}
