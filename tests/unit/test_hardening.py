"""Issue 12 ("Hardening, second round"), the parts a unit test reaches: each failed before its fix."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from synapse_runtime.actions.env import read_dotenv
from synapse_runtime.errors import ExitCode, ValidationError
from synapse_runtime.events import EventWriter, Redactor
from synapse_runtime.contract.inputs import parse_params

# -- item 2: redaction that knows JSON -----------------------------------------------------------


@pytest.mark.parametrize("secret", ["null", "true", "false", "1234", "12.5", "-100"])
def test_secret_equal_to_a_json_literal_or_number_never_touches_structure(secret: str) -> None:
    line = json.dumps({"result": None, "ok": True, "no": False, "n": 1234, "f": 12.5, "m": -100, "error": None},
                      separators=(",", ":"))
    out = Redactor([secret]).json(line)
    assert json.loads(out) == json.loads(line)


def test_secret_inside_strings_and_keys_is_masked_whatever_the_escaping() -> None:
    secret = 'p"a\\ss/é\u2028'
    doc = {"msg": f"token={secret};", secret: 1, "list": [secret, "x"], "nested": {"k": f"<{secret}>"}}
    for line in (json.dumps(doc), json.dumps(doc, ensure_ascii=False)):
        out = Redactor([secret]).json(line)
        back = json.loads(out)
        assert secret not in json.dumps(back, ensure_ascii=False)
        assert back["msg"] == "token=***;" and back["list"] == ["***", "x"] and back["nested"] == {"k": "<***>"}
        assert back["***"] == 1


def test_json_redaction_leaves_lines_without_secrets_byte_for_byte() -> None:
    line = '{"a":"b","c":[1,2.50,null]}\n'
    assert Redactor(["secret-value"]).json(line) is line


def test_writer_keeps_lines_valid_json_with_a_null_secret(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    seen: list[dict] = []
    w = EventWriter(fd, job_id="job-nullable", redactor=Redactor(["null"]))
    w.listeners.append(seen.append)  # parses each line: raised JSONDecodeError before the fix
    w.emit("result", {"result": {"result": None}})
    w.close("end", {"status": "succeeded", "exit_code": 0, "duration_s": 0})
    os.close(fd)
    events = [json.loads(line) for line in path.read_text().splitlines()]
    assert events[0]["result"] == {"result": None} and events[0]["job_id"] == "job-***able"
    assert [e["type"] for e in seen] == ["result", "end"]


def test_result_json_stays_valid_with_a_null_secret(tmp_path: Path) -> None:
    from synapse_runtime.contract.outputs import write_result

    write_result(tmp_path, {"status": "succeeded", "error": None, "result": {"result": None}}, Redactor(["null"]))
    assert json.loads((tmp_path / "result.json").read_text())["error"] is None


# -- item 6: a deferred cancellation runs only in the thread that deferred it ------------------------


def test_deferred_cancellation_is_never_run_by_another_thread(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "events.jsonl", os.O_WRONLY | os.O_CREAT)
    w = EventWriter(fd, job_id=None)
    ran_in: list[str] = []
    w.defer(lambda: ran_in.append(threading.current_thread().name))  # the main thread, mid-write

    def reader() -> None:  # a stdout-capture reader thread emitting an `output` event
        w.emit("output", {"stream": "stdout", "text": "x"})

    t = threading.Thread(target=reader, name="synapse-capture")
    t.start()
    t.join()
    assert ran_in == []  # before the fix the reader thread ran (and died of) the cancellation
    w.emit("message", {"message": "next", "context": "info"})
    assert ran_in == [threading.current_thread().name]
    os.close(fd)


# -- item 7: dotenv escapes in one pass ------------------------------------------------------------


@pytest.mark.parametrize("written,value", [
    (r'"C:\\new"', "C:\\new"),
    (r'"a\nb"', "a\nb"),
    (r'"say \"hi\""', 'say "hi"'),
    (r'"tab\there"', "tab\there"),
    (r'"ends with \\"', "ends with \\"),
    (r'"\\\\server\\share"', r"\\server\share"),
    (r'"keep \q as is"', r"keep \q as is"),
    (r"'C:\new'", r"C:\new"),  # single quotes: no escapes at all
    ('"form\x0cfeed # and \u2028 line separator"', "form\x0cfeed # and \u2028 line separator"),  # lines end at \n only
])
def test_dotenv_escapes(tmp_path: Path, written: str, value: str) -> None:
    path = tmp_path / "job.env"
    path.write_text(f"KEY={written}\n", encoding="utf-8")
    assert read_dotenv(path) == {"KEY": value}


# -- item 8: a JSON integer over 4300 digits is invalid input ---------------------------------------


@pytest.mark.parametrize("raw,where", [
    (b'{"n": ' + b"7" * 5000 + b"}", "params.json"),
    (b"n: " + b"7" * 5000 + b"\n", "params.yaml"),
])
def test_huge_integer_in_params_is_a_validation_error(raw: bytes, where: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_params(raw, where)
    assert info.value.exit_code == ExitCode.INVALID_INPUT
    assert where in info.value.message and "as a string" in (info.value.hint or "")
