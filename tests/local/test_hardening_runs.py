"""Issue 12 ("Hardening, second round"), reproduced through real runs of `synapse-runtime run`.

Each test is the reproduction from the issue; each failed on the code before the fix.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from synapse_runtime.testing import RunResult, run_local
from tests.backend.backend_fake import TOKEN, FakeBackend
from tests.backend.conftest import backend  # noqa: F401 - the fake backend fixture, shared
from tests.conftest import PLUGINS, check_stream
from tests.secrets import register

USERINFO_PASSWORD = "pw-hardening-4242"
register(TOKEN, USERINFO_PASSWORD)




def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _knob_error(r: RunResult, variable: str, value: str) -> dict:
    assert r.exit_code == 2, (r.stdout[-2000:], r.stderr[-2000:])
    assert r.stderr == ""
    error = r.error
    assert error["error_type"] == "ValidationError" and error["code"] == 2
    assert error["details"]["variable"] == variable and error["details"]["value"] == value
    assert error["details"]["allowed"] and variable in error["message"] and repr(value) in error["message"]
    assert r.result is not None and r.result["status"] == "failed" and r.result["exit_code"] == 2
    assert r.result["error"]["details"]["variable"] == variable
    return error


# -- items 3 and 11: a bad knob is exit 2 with an error event and result.json, before anything runs --


def test_bad_progress_interval_is_exit_2_with_error_event_and_result_json(run_cli) -> None:
    r = run_cli("faults", "noop", env={"SYNAPSE_PROGRESS_INTERVAL": "abc"})
    error = _knob_error(r, "SYNAPSE_PROGRESS_INTERVAL", "abc")
    assert "number" in error["details"]["allowed"]


def test_bad_child_grace_fails_before_the_action_runs(run_cli, tmp_path: Path) -> None:
    r = run_cli("faults", "noop", env={"SYNAPSE_CHILD_GRACE": "abc"})
    _knob_error(r, "SYNAPSE_CHILD_GRACE", "abc")
    assert not r.of_type("result") and not r.of_type("output")  # the action never ran


@pytest.mark.parametrize("variable,value", [
    ("SYNAPSE_CHECKPOINT_EXTRACT", "maybe"),
    ("SYNAPSE_S3_STRATEGY", "fastest"),
    ("SYNAPSE_S3_CONCURRENCY", "0"),
    ("SYNAPSE_CACHE_MAX_BYTES", "10Q"),
    ("SYNAPSE_REPORT_JOB", "nah"),
])
def test_every_typed_knob_is_checked_up_front(run_cli, variable: str, value: str) -> None:
    _knob_error(run_cli("faults", "noop", env={variable: value}), variable, value)


def test_a_bad_knob_from_an_env_file_is_reported_too(run_cli, tmp_path: Path) -> None:
    env_file = tmp_path / "job.env"
    env_file.write_text("SYNAPSE_GPU_PROBE=perhaps\n")
    _knob_error(run_cli("faults", "noop", env={"SYNAPSE_ENV_FILE": str(env_file)}), "SYNAPSE_GPU_PROBE", "perhaps")


def test_good_knob_spellings_are_accepted(run_cli) -> None:
    r = run_cli("faults", "noop", env={"SYNAPSE_PROGRESS_INTERVAL": " 0.5 ", "SYNAPSE_GPU_PROBE": "Off",
                                      "SYNAPSE_CHILD_GRACE": "", "SYNAPSE_S3_PART_SIZE": "8MiB"})
    assert r.exit_code == 0, r.error


# -- item 2: redaction never corrupts JSON ----------------------------------------------------------


def test_secret_equal_to_a_json_literal_does_not_corrupt_events_or_result_json(run_cli) -> None:
    r = run_cli("faults", "noop", env={"FEATURE_AUTH_ENABLED": "null"})  # parse_events fails on a bad line
    assert r.exit_code == 0
    assert r.value == {"result": None}
    assert json.loads((r.output_dir / "result.json").read_text())["error"] is None


def test_secret_embedded_in_a_longer_string_is_still_hidden(run_cli, tmp_path: Path) -> None:
    secret = "s3cr3t-hardening-value"
    register(secret)
    r = run_cli("faults", "noisy", {"echo_env": ["MY_API_KEY"], "lines": 0}, env={"MY_API_KEY": secret})
    assert r.exit_code == 0
    assert secret not in r.stdout and secret not in (r.output_dir / "result.json").read_text()
    assert r.value["secret_in_result"] == ["***"]
    assert any(e.get("text") == "MY_API_KEY=***" for e in r.of_type("output"))


# -- item 4: a password in SYNAPSE_HOST never appears -------------------------------------------------


def test_userinfo_in_backend_host_is_refused_without_showing_the_password(run_cli) -> None:
    env = {"SYNAPSE_HOST": f"https://user:{USERINFO_PASSWORD}@backend.invalid", "SYNAPSE_ACCESS_TOKEN": TOKEN,
           "SYNAPSE_JOB_ID": "job-1"}
    r = run_cli("faults", "noop", env=env)
    assert USERINFO_PASSWORD not in r.stdout + r.stderr
    assert USERINFO_PASSWORD not in (r.output_dir / "result.json").read_text()
    assert r.exit_code == 2 and r.error["error_type"] == "ValidationError"
    assert "SYNAPSE_HOST" in r.error["message"] and "user:password@" in r.error["message"]


# -- item 8: a huge integer in params is invalid input, not a crash ------------------------------------


def test_json_integer_over_4300_digits_is_exit_2(run_cli, tmp_path: Path) -> None:
    params = tmp_path / "params.json"
    params.write_text('{"n": ' + "9" * 5000 + "}")
    r = check_stream(run_local(PLUGINS / "faults", "noop", args=["--params", str(params)],
                               output_dir=tmp_path / "out"))
    assert r.exit_code == 2 and r.error["error_type"] == "ValidationError"
    assert "digits" in r.error["message"] and str(params) in r.error["message"]


# -- item 10: a backend outage is a warning event on stdout, before `end` -------------------------------


def test_backend_outage_is_a_warning_event_not_a_stderr_line(run_cli) -> None:
    env = {"SYNAPSE_HOST": f"http://127.0.0.1:{_free_port()}", "SYNAPSE_ACCESS_TOKEN": TOKEN, "SYNAPSE_JOB_ID": "job-1"}
    r = run_cli("faults", "noop", env=env)
    assert r.exit_code == 0
    warnings = [m["message"] for m in r.of_type("message") if m["context"] == "warning"]
    assert any("backend" in w and "job-1" in w for w in warnings), r.stdout
    assert r.stderr == ""
    assert r.events[-1]["type"] == "end"


def test_final_status_is_sent_before_end(run_cli, backend: FakeBackend) -> None:
    env = {"SYNAPSE_HOST": backend.url, "SYNAPSE_ACCESS_TOKEN": TOKEN, "SYNAPSE_JOB_ID": "job-1"}
    r = run_cli("faults", "noop", env=env)
    assert r.exit_code == 0
    assert [p["status"] for p in backend.patches("job-1") if "status" in p][-1] == "SUCCEEDED"


# -- item 12: no job id given, no reporting to a made-up job ---------------------------------------------


def test_no_job_id_means_no_reporting_and_one_warning(run_cli, backend: FakeBackend) -> None:
    env = {"SYNAPSE_HOST": backend.url, "SYNAPSE_ACCESS_TOKEN": TOKEN, "SYNAPSE_JOB_ID": "", "RAY_JOB_ID": ""}
    r = run_cli("faults", "noop", env=env)
    assert r.exit_code == 0
    assert backend.calls("PATCH") == []
    warnings = [m["message"] for m in r.of_type("message") if m["context"] == "warning"]
    assert len([w for w in warnings if "SYNAPSE_JOB_ID" in w]) == 1, warnings
