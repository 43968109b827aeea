"""`synapse-runtime run` end to end on this machine: real processes, real signals, real files."""

from __future__ import annotations

import importlib.util

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synapse_runtime.testing import parse_events
from tests.conftest import PLUGINS, check_stream
from tests.secrets import ACCESS_TOKEN, AWS_SECRET, VOLUME_SECRET


def test_class_action_succeeds_with_result_json(run_cli) -> None:
    r = run_cli("text-tools", "wordcount", {"text": "the cat and the hat", "top": 2})
    assert r.exit_code == 0
    assert r.value == {"lines": 1, "words": 5, "unique_words": 4, "characters": 19,
                       "top": [{"word": "the", "count": 2}, {"word": "cat", "count": 1}]}
    assert r.result["status"] == "succeeded" and r.result["result"] == r.value and r.result["error"] is None
    assert set(r.result) == {"status", "result", "error", "job_id", "plugin", "action", "started_at",
                             "finished_at", "duration_s", "exit_code"}
    start = r.events[0]
    assert start["plugin"] == "text-tools" and start["action"] == "wordcount" and start["gpus"] == []
    assert json.loads((r.output_dir / "counts.json").read_text())["the"] == 2


def test_function_action_with_upstream_import_path(run_cli) -> None:
    r = run_cli("text-tools", "slugify", {"titles": ["Hello, World!", "Hello World"]})
    assert r.exit_code == 0 and r.value == {"slugs": ["hello-world", "hello-world-2"]}


def test_non_dict_result_is_wrapped(run_cli) -> None:
    r = run_cli("faults", "noop")
    assert r.exit_code == 0 and r.value == {"result": None}


def test_execution_error_exit_1(run_cli) -> None:
    r = run_cli("faults", "fail", {"message": "nope"})
    assert r.exit_code == 1
    assert r.error["error_type"] == "ExecutionError" and r.error["message"] == "nope" and r.error["code"] == 1
    assert r.end["status"] == "failed" and r.result["error"]["message"] == "nope"


def test_user_exception_exit_1_names_the_location(run_cli) -> None:
    r = run_cli("faults", "crash")
    assert r.exit_code == 1
    assert r.error["error_type"] == "KeyError" and "missing" in r.error["message"]
    assert r.error["details"]["location"].endswith("faults/actions.py:28 in execute")
    assert "Traceback" in r.error["traceback"]


def test_bad_params_exit_2_with_field_details(run_cli) -> None:
    r = run_cli("faults", "strict", {"count": 0, "mode": "medium", "ratio": 2, "tags": "x"})
    assert r.exit_code == 2
    e = r.error
    assert e["error_type"] == "ValidationError" and e["code"] == 2
    assert sorted(x["loc"] for x in e["details"]["errors"]) == ["count", "mode", "ratio", "tags"]
    assert e["hint"]
    assert not (r.output_dir / "counts.json").exists()


def test_malformed_params_file_exit_2(run_cli, tmp_path: Path) -> None:
    bad = tmp_path / "p.json"
    bad.write_text('{"count": 1,')
    r = run_cli("faults", "strict", args=["--params", str(bad)])
    assert r.exit_code == 2 and "not valid JSON" in r.error["message"] and "line 1" in r.error["message"]


@pytest.mark.parametrize("plugin,action,match", [
    ("faults", "nope", "has no action 'nope'"),
    ("/nonexistent/plugin", None, "does not exist"),
])
def test_unknown_plugin_or_action_exit_3(run_cli, plugin, action, match) -> None:
    r = run_cli(plugin, action)
    assert r.exit_code == 3 and match in r.error["message"] and r.error["hint"]


def test_stdout_is_pure_json_under_print_logging_and_subprocess(run_cli) -> None:
    r = run_cli("faults", "noisy", {"lines": 200})
    assert r.exit_code == 0
    outputs = r.of_type("output")
    texts = [o["text"] for o in outputs]
    assert [t for t in texts if t.startswith("print line")] == [f"print line {i}" for i in range(200)]
    assert {"stream": "stderr", "text": "to stderr"}.items() <= next(o for o in outputs if o["stream"] == "stderr").items()
    assert any("child stdout" in t for t in texts) and "child stderr" in texts
    logs = r.of_type("log")
    assert logs[0]["level"] == "WARNING" and logs[0]["logger"] == "faults.noisy"
    assert r.stderr == ""  # nothing escapes to the real stderr either


def test_secrets_never_appear_anywhere(run_cli, tmp_path: Path) -> None:
    secret_dir = tmp_path / "secret-inputs"
    secret_dir.mkdir()
    (secret_dir / "DB_URL").write_text(f"postgres://u:{VOLUME_SECRET}@db")
    env = {"SYNAPSE_ACCESS_TOKEN": ACCESS_TOKEN, "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
           "SYNAPSE_SECRET_DIR": str(secret_dir), "SYNAPSE_TERMINATION_LOG": str(tmp_path / "term.log")}
    r = run_cli("faults", "noisy", {"echo_env": ["SYNAPSE_ACCESS_TOKEN", "AWS_SECRET_ACCESS_KEY", "DB_URL"]}, env=env)
    assert r.exit_code == 0
    everything = r.stdout + r.stderr + (r.output_dir / "result.json").read_text() + (tmp_path / "term.log").read_text()
    for value in (ACCESS_TOKEN, AWS_SECRET, VOLUME_SECRET):
        assert value not in everything
    assert "***" in r.stdout  # the values were there, and were masked


def _spawn(tmp_path: Path, action: str, params: dict, extra_env: dict | None = None) -> tuple[subprocess.Popen, Path]:
    out = tmp_path / "out"
    env = {**os.environ, "SYNAPSE_ENV_DIR": "", "SYNAPSE_SECRET_DIR": "", **(extra_env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "synapse_runtime", "run", "--plugin", str(PLUGINS / "faults"), "--action", action,
         "--output", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**env, "SYNAPSE_ACTION_PARAMS": json.dumps(params)},
    )
    return proc, out


def _wait_for_step(proc: subprocess.Popen, out: Path, step: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not (out / f"{step}.marker").exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.02)


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_cancels_rolls_back_and_keeps_output(tmp_path: Path, sig: int, code: int) -> None:
    proc, out = _spawn(tmp_path, "slow", {"seconds": 9, "steps": 3})
    _wait_for_step(proc, out, "step2")
    t0 = time.monotonic()
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=10)
    elapsed = time.monotonic() - t0
    from synapse_runtime.testing import RunResult

    r = check_stream(RunResult(proc.returncode, parse_events(stdout), json.loads((out / "result.json").read_text()),
                               stdout, stderr, out))
    assert r.exit_code == code and elapsed < 5
    assert r.end["status"] == "cancelled" and r.result["status"] == "cancelled"
    assert r.error["error_type"] == "Cancelled"
    rolled = [e["step"] for e in map(json.loads, (out / "rollback.jsonl").read_text().splitlines()) if "phase" not in e]
    assert rolled == ["step2", "step1"]  # the interrupted step first, then the finished one
    assert not list(out.glob("*.marker"))


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_cancel_stops_children_and_orphaned_grandchildren(tmp_path: Path) -> None:
    proc, out = _spawn(tmp_path, "slow", {"seconds": 6, "steps": 3, "spawn": True})
    _wait_for_step(proc, out, "step2")
    deadline = time.monotonic() + 10
    while len((out / "spawned.pids").read_text().split()) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    pids = [int(x) for x in (out / "spawned.pids").read_text().split()]
    assert len(pids) == 4 and all(_alive(p) for p in pids), "two steps each left a child and an orphan running"
    proc.send_signal(signal.SIGTERM)
    stdout, _ = proc.communicate(timeout=10)
    assert proc.returncode == 143
    assert [p for p in pids if _alive(p)] == [], "no process of the action outlives the run"
    warnings = [e for e in parse_events(stdout) if e["type"] == "message" and "left running" in e["message"]]
    assert len(warnings) == 1


def test_second_signal_during_rollback_lets_rollback_finish(tmp_path: Path) -> None:
    proc, out = _spawn(tmp_path, "slow", {"seconds": 6, "steps": 3, "rollback_seconds": 0.5})
    _wait_for_step(proc, out, "step2")
    proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    while not (out / "rollback.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)  # lands inside the first rollback
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=10)
    assert proc.returncode == 143
    rolled = [e["step"] for e in map(json.loads, (out / "rollback.jsonl").read_text().splitlines()) if "phase" not in e]
    assert rolled == ["step2", "step1"] and not list(out.glob("*.marker"))
    assert json.loads((out / "result.json").read_text())["status"] == "cancelled"


def _catches_sigterm(pid: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


def test_signal_at_the_earliest_moment_still_follows_the_contract(tmp_path: Path) -> None:
    """SIGTERM as soon as the process catches it (while the runtime still imports): a cancelled run with
    its events and result.json, not a process killed without a word."""
    proc, out = _spawn(tmp_path, "slow", {"seconds": 5, "steps": 1})
    deadline = time.monotonic() + 10
    while not _catches_sigterm(proc.pid):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.0005)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=10)
    events = parse_events(stdout)
    assert proc.returncode == 143, stderr
    assert [events[0]["type"], events[-1]["type"]] == ["start", "end"] and events[-1]["status"] == "cancelled"
    assert json.loads((out / "result.json").read_text())["status"] == "cancelled"


def test_step_failure_rolls_back_and_exits_1(run_cli) -> None:
    r = run_cli("faults", "slow", {"seconds": 0.3, "steps": 3, "fail_at": 3})
    assert r.exit_code == 1 and r.error["message"] == "Step 'step3' failed: step3 failed on purpose"
    rolled = [e["step"] for e in map(json.loads, (r.output_dir / "rollback.jsonl").read_text().splitlines()) if "phase" not in e]
    assert rolled == ["step3", "step2", "step1"]


def test_termination_log_is_written_and_bounded(run_cli, tmp_path: Path) -> None:
    term = tmp_path / "termination-log"
    r = run_cli("faults", "fail", {"message": "x" * 10000}, env={"SYNAPSE_TERMINATION_LOG": str(term)})
    text = term.read_text()
    assert len(text.encode()) <= 4096
    summary = json.loads(text)
    assert summary["status"] == "failed" and summary["exit_code"] == 1 and summary["error_type"] == "ExecutionError"
    assert r.exit_code == 1


def test_unwritable_output_is_exit_2(run_cli, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    r = run_cli("faults", "noop", output_dir=blocker / "sub")
    assert r.exit_code == 2 and "not writable" in r.error["message"]


def test_env_file_and_entrypoint_env(run_cli, tmp_path: Path) -> None:
    envf = tmp_path / "job.env"
    envf.write_text(f"SYNAPSE_JOB_ID=job-from-file\nSYNAPSE_ACTION_PARAMS={json.dumps({'titles': ['A b']})}\n")
    r = run_cli("text-tools", None, env={"SYNAPSE_ENV_FILE": str(envf), "SYNAPSE_ACTION_ENTRYPOINT": "text_tools.slug.slugify"})
    assert r.exit_code == 0 and r.value == {"slugs": ["a-b"]}
    assert {e["job_id"] for e in r.events} == {"job-from-file"}


def test_pretty_output_is_for_humans(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "synapse_runtime", "--plugin", str(PLUGINS / "faults"), "--action", "fail",
         "--output", str(tmp_path), "--pretty"], capture_output=True, text=True, env={**os.environ, "SYNAPSE_ENV_DIR": ""})
    assert proc.returncode == 1
    assert "✖ ExecutionError (exit 1): the action failed on purpose" in proc.stdout
    assert "■ failed in" in proc.stdout and "\x1b[" not in proc.stdout


def test_schema_and_list_commands() -> None:
    env = {**os.environ, "SYNAPSE_ENV_DIR": ""}
    out = subprocess.run([sys.executable, "-m", "synapse_runtime", "schema", "--plugin", str(PLUGINS / "faults"),
                          "--action", "strict"], capture_output=True, text=True, env=env, check=True).stdout
    schema = json.loads(out)
    assert schema["required"] == ["count", "mode"] and schema["properties"]["mode"]["enum"] == ["fast", "slow"]
    listed = json.loads(subprocess.run([sys.executable, "-m", "synapse_runtime", "list", "--plugin",
                                        str(PLUGINS / "digits"), "--json"], capture_output=True, text=True, env=env,
                                       check=True).stdout)
    assert [a["name"] for a in listed["actions"]] == ["train", "infer", "evaluate", "serve"]
    events = json.loads(subprocess.run([sys.executable, "-m", "synapse_runtime", "schema", "--events"],
                                       capture_output=True, text=True, env=env, check=True).stdout)
    assert events["$defs"]["end"]["required"] == ["status", "exit_code", "duration_s"]
    bad = subprocess.run([sys.executable, "-m", "synapse_runtime", "schema", "--plugin", "/nope"],
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 3 and "does not exist" in bad.stderr


def test_fake_nvidia_smi_is_reported_in_start(run_cli, tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    smi = bindir / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho '0, NVIDIA H100 80GB HBM3, 81559, GPU-abc'\necho '1, NVIDIA H100 80GB HBM3, 81559, GPU-def'\n")
    smi.chmod(0o755)
    r = run_cli("faults", "noop", env={"PATH": f"{bindir}:{os.environ['PATH']}"})
    start = r.events[0]
    assert start["device"] == "cuda" and [g["name"] for g in start["gpus"]] == ["NVIDIA H100 80GB HBM3"] * 2
    assert start["gpus"][1] == {"index": 1, "name": "NVIDIA H100 80GB HBM3", "memory_mb": 81559, "uuid": "GPU-def"}
    cpu = run_cli("faults", "noop", env={"PATH": "/usr/bin:/bin"})
    assert cpu.events[0]["device"] == "cpu" and "running on CPU" in cpu.events[0]["device_note"]


def test_real_synapse_sdk_is_not_shadowed(tmp_path: Path) -> None:
    fake = tmp_path / "site" / "synapse_sdk"
    (fake / "plugins").mkdir(parents=True)
    (fake / "__init__.py").write_text("REAL = True\n")
    (fake / "plugins" / "__init__.py").write_text("from synapse_runtime import BaseAction, action\n")
    code = ("from synapse_runtime.compat import install; install(); import synapse_sdk, sys; "
            "print(getattr(synapse_sdk, 'REAL', False))")
    with_real = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               env={**os.environ, "PYTHONPATH": str(tmp_path / "site")}, check=True).stdout.strip()
    without = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert (with_real, without) == ("True", "False")


def _real_sdk_installed() -> bool:
    from synapse_runtime.compat import SHIM_DIR

    spec = importlib.util.find_spec("synapse_sdk")  # the shim may be on sys.path already (tests/compat)
    return spec is not None and not (spec.origin or "").startswith(SHIM_DIR)


@pytest.mark.skipif(_real_sdk_installed(),
                    reason="the real synapse-sdk is installed: real-package mode is checked by tests/compat")
def test_upstream_import_paths_resolve_to_ours() -> None:
    code = """
from synapse_runtime.compat import install; install()
import synapse_runtime as sr
from synapse_sdk.plugins import BaseAction, action, RuntimeContext, ExecutionError, PluginError, ValidationError, ActionNotFoundError, BaseInferenceAction, InferenceContext, InferenceProgressCategories, BaseStep, BaseStepContext, StepResult, StepRegistry, Orchestrator, PluginConfig, ActionConfig, run_plugin
from synapse_sdk.plugins.action import BaseAction as B2, NoResult
from synapse_sdk.plugins.decorators import action as a2
from synapse_sdk.plugins.context import RuntimeContext as R2, PluginEnvironment
from synapse_sdk.plugins.context.env import PluginEnvironment as E2
from synapse_sdk.plugins.errors import ModelLoadError, ArchiveError, ChecksumMismatchError, PluginRunError
from synapse_sdk.plugins.steps import BaseStep as S2
from synapse_sdk.plugins.actions.inference import BaseInferenceAction as I2
from synapse_sdk.plugins.actions.inference.action import InferenceContext as C2
from synapse_sdk.plugins.types import ModelWeights, TestResults
from synapse_sdk.loggers import BaseLogger, ConsoleLogger
assert BaseAction is B2 is sr.BaseAction and action is a2 is sr.action and R2 is sr.RuntimeContext
assert E2 is PluginEnvironment is sr.PluginEnvironment and I2 is sr.BaseInferenceAction and S2 is sr.BaseStep
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


def test_run_plugin_in_process() -> None:
    from synapse_runtime import run_plugin

    assert run_plugin(PLUGINS / "text-tools", "slugify", {"titles": ["X Y"]}) == {"slugs": ["x-y"]}
