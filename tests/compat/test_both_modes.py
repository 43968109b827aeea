"""Upstream-style plugins through the CLI: upstream's classes in real mode, the shim's otherwise.

Each run is a real subprocess of ``synapse-runtime run`` on real files; the event stream is
checked against the schema by ``run_cli``.  The assertions are the same in both modes except where
docs/compat.md lists a deliberate difference (the result rule, the class that ran).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from .conftest import COMPAT_PLUGINS, MODE
from . import upstream_templates

PLUGIN = COMPAT_PLUGINS / "upstream-style"


def test_class_action_runs_on_the_modes_classes(run_cli) -> None:
    r = run_cli(PLUGIN, "probe", {"text": "Hello world, hello again", "top": 1})
    assert r.exit_code == 0, r.error
    v = r.value
    assert v["top"] == [["hello", 2]] and v["params_type"] == "ProbeParams"
    assert v["ctx_module"] == ("synapse_sdk.plugins.context" if MODE == "real" else "synapse_runtime.actions.context")
    assert v["logger_is_upstream_base"] is (MODE == "real")
    assert v["progress_percent"] == 100.0 and v["metrics"] == {"words": 4, "unique": 3}
    assert v["has_v2_client_field"] is True
    messages = {(m["message"], m["context"]) for m in r.of_type("message")}
    assert {("counting done", "success"), ("plain-string level", "warning"), ("logger.info works", "info")} <= messages
    assert [m["values"] for m in r.of_type("metrics")] == [{"words": 4}, {"words": 4, "unique": 3}]
    assert [(p["current"], p["category"]) for p in r.of_type("progress")][-1] == (2, "count")
    assert [e["data"] for e in r.of_type("event") if e["event"] == "counted"] == [{"words": 4}]
    assert r.result["status"] == "succeeded" and r.result["result"] == v


def test_function_action_gets_its_params_model(run_cli) -> None:
    r = run_cli(PLUGIN, "words", {"text": "one two three"})
    assert r.exit_code == 0, r.error
    assert r.value == {"count": 3, "params_type": "WordsParams"}


def test_invalid_params_exit_2_naming_the_field(run_cli) -> None:
    r = run_cli(PLUGIN, "probe", {"text": "x", "top": 0})
    assert r.exit_code == 2 and r.error["error_type"] == "ValidationError"
    assert "top" in r.error["message"]


def test_steps_run_in_order_with_the_current_step_known(run_cli) -> None:
    r = run_cli(PLUGIN, "pipeline", {"numbers": [1, 2, 3]})
    assert r.exit_code == 0, r.error
    assert r.value["processed_count"] == 3 and r.value["results"] == [{"value": 1}, {"value": 4}, {"value": 9}]
    assert r.value["success"] is True and r.value["steps_executed"] == 4
    journal = (r.output_dir / "journal.txt").read_text().splitlines()
    assert journal == ["run load order=0 logger_step=load", "run check order=1 logger_step=check",
                       "run square order=2 logger_step=square", "run write order=3 logger_step=timed_write"]
    assert [m["category"] for m in r.of_type("metrics")] == ["load", "check", "square", "timed_write"]


def test_failed_step_rolls_back_in_reverse_and_exits_1(run_cli) -> None:
    r = run_cli(PLUGIN, "pipeline", {"numbers": [1], "fail_at": "square"})
    assert r.exit_code == 1
    assert "Step 'square' failed: square refused" in r.error["message"]
    journal = (r.output_dir / "journal.txt").read_text().splitlines()
    assert journal[-3:] == ["rollback square", "rollback check", "rollback load"]
    assert r.result["status"] == "failed"


def test_result_that_misses_its_model(run_cli) -> None:
    r = run_cli(PLUGIN, "loose_result", {"text": "a b"})
    if MODE == "real":  # upstream's rule: a warning, the result stands
        assert r.exit_code == 0 and r.value == {"count": 2}
        assert any("LooseResultModel" in m["message"] for m in r.of_type("message") if m["context"] == "warning")
    else:  # the runtime's stricter rule (docs/compat.md, deliberate): the run fails
        assert r.exit_code == 1 and "LooseResultModel" in r.error["message"]


def test_upstream_only_framework(run_cli) -> None:
    r = run_cli(PLUGIN, "upload", {})
    if MODE == "shim":
        assert r.exit_code == 3, r.error
        assert "synapse_sdk.plugins.actions.upload" in r.error["message"]
        assert "synapse-sdk==2026.2.17" in r.error["hint"] and "requirements" in r.error["hint"]
        assert r.error["details"]["module"] == "synapse_sdk.plugins.actions.upload"
    else:  # imported from the real package: it gets as far as its params (none were given)
        assert r.exit_code != 3, r.error


def test_text_tools_example_in_this_mode(run_cli) -> None:
    r = run_cli("text-tools", "wordcount", {"text": "the cat and the hat"})
    assert r.exit_code == 0, r.error
    assert r.value["words"] == 5 and r.value["top"][0] == {"word": "the", "count": 2}
    s = run_cli("text-tools", "slugify", {"titles": ["Hello World"]})
    assert s.exit_code == 0 and s.value["slugs"] == ["hello-world"]


def test_upstreams_rendered_test_template(run_cli, tmp_path) -> None:
    if not upstream_templates.available():  # make test fetches the wheel first (upstream-wheel)
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("upstream's templates are missing under CI=true: run `make upstream-wheel`", pytrace=False)
        pytest.skip("upstream's templates: run `make upstream-wheel` (shim mode) or use .venv-sdk")
    plugin = upstream_templates.render_plugin(tmp_path / "rendered", "neural_net", {"test": "test"},
                                              data_type="image")
    r = run_cli(plugin, "test", {})
    assert r.exit_code == 0, r.error
    assert r.value["python_version"].count(".") == 2 and "cuda_available" in r.value
    infos = [m["message"] for m in r.of_type("message")]
    assert any(m.startswith("python_version: ") for m in infos)


def test_action_runs_in_the_plugin_folder_when_it_is_writable(run_cli) -> None:
    """As upstream starts a job: files written under os.getcwd() work, relative reads find the plugin's files."""
    r = run_cli(PLUGIN, "workdir", {})
    assert r.exit_code == 0, r.error
    assert r.value == {"cwd": str(PLUGIN.resolve()), "code_line": "code: upstream-style"}


def test_read_only_plugin_folder_gets_a_per_run_working_dir(monkeypatch, tmp_path) -> None:
    """Where the plugin folder cannot be written (the image's read-only root), a fresh directory under
    the temp dir that links the plugin's files; removed afterwards, the caller's cwd restored."""
    from synapse_runtime import workdir
    from synapse_runtime.contract.inprocess import run_plugin

    monkeypatch.setattr(workdir, "_writable", lambda path: False)  # root can write anywhere: say it cannot
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    before = os.getcwd()
    value = run_plugin(PLUGIN, "workdir", {})
    assert os.path.dirname(value["cwd"]) == str(tmp_path) and "synapse-work-" in value["cwd"]
    assert value["code_line"] == "code: upstream-style"  # read through the link to the plugin's file
    assert not os.path.exists(value["cwd"]) and os.getcwd() == before


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_cancels_the_run_in_this_mode(tmp_path, sig: int, code: int) -> None:
    out = tmp_path / "out"
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"seconds": 60}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "synapse_runtime", "run", "--plugin", str(PLUGIN), "--action", "nap",
         "--params", str(params), "--output", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
        env={**os.environ, "SYNAPSE_ENV_DIR": "", "SYNAPSE_SECRET_DIR": ""})
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        for line in proc.stdout:  # wait until the action is running
            if '"napping"' in line or time.monotonic() > deadline:
                break
        proc.send_signal(sig)
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code
    end = json.loads(rest.strip().splitlines()[-1])
    assert end["type"] == "end" and end["status"] == "cancelled"
    assert json.loads((out / "result.json").read_text())["status"] == "cancelled"


def test_run_plugin_gives_ctx_env_what_a_run_gives(tmp_path, monkeypatch) -> None:
    """run_plugin reads the contract's env inputs as the runner does: an env file's value, and
    config.yaml's ``env:`` under everything else, reach ``ctx.env`` in this mode, without writing
    the host process's environment."""
    from synapse_runtime.contract.inprocess import run_plugin

    plugin = tmp_path / "envprobe"
    (plugin / "envprobe").mkdir(parents=True)
    (plugin / "config.yaml").write_text(
        "name: envprobe\ncode: envprobe\nenv:\n  FROM_CONFIG: config\n  OVERRIDDEN: config\n"
        "actions:\n  probe: {entrypoint: envprobe.actions.Probe}\n")
    (plugin / "envprobe" / "__init__.py").write_text("")
    (plugin / "envprobe" / "actions.py").write_text(
        "from synapse_sdk.plugins import BaseAction\n\n\n"
        "class Probe(BaseAction):\n"
        "    def execute(self):\n"
        "        env = self.ctx.env\n"
        "        return {k: env.get(k) for k in ('FROM_CONFIG', 'OVERRIDDEN', 'FROM_FILE')}\n")
    env_file = tmp_path / "run.env"
    env_file.write_text("FROM_FILE=file\n")
    monkeypatch.setenv("SYNAPSE_ENV_FILE", str(env_file))
    monkeypatch.setenv("OVERRIDDEN", "process")
    monkeypatch.delenv("FROM_CONFIG", raising=False)
    monkeypatch.syspath_prepend(str(plugin))
    value = run_plugin(plugin, "probe", {})
    assert value == {"FROM_CONFIG": "config", "OVERRIDDEN": "process", "FROM_FILE": "file"}, MODE
    assert "FROM_CONFIG" not in os.environ and "FROM_FILE" not in os.environ
