"""The bad-input corpus (tests/corpus/NN-name/case.json): every case fails cleanly.

Each case gets: the documented exit code, one `error` event whose message names what is wrong
(and, for invalid input, how to fix it), no traceback as the only message, `result.json` saying
`failed`, and nothing written outside the output directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from synapse_runtime.testing import RunResult, parse_events
from tests.conftest import PLUGINS, check_stream

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
CASES = sorted(p for p in CORPUS.iterdir() if (p / "case.json").is_file())


def test_corpus_is_big_enough() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("case_dir", CASES, ids=[p.name for p in CASES])
def test_bad_input_fails_cleanly(case_dir: Path, tmp_path: Path) -> None:
    case = json.loads((case_dir / "case.json").read_text())
    work = tmp_path / "cwd"
    work.mkdir()
    out = tmp_path / "out"
    plugin = case.get("plugin")
    plugin_path = case_dir / plugin if plugin and (case_dir / plugin).is_dir() else (
        PLUGINS / plugin if plugin and not plugin.startswith("/") else Path(plugin))
    env = {**os.environ, "SYNAPSE_ENV_DIR": "", "SYNAPSE_SECRET_DIR": ""}
    env.pop("SYNAPSE_ACTION_PARAMS", None)
    env.update(case.get("env", {}))
    cmd = [sys.executable, "-m", "synapse_runtime", "run", "--plugin", str(plugin_path)]
    if case.get("action"):
        cmd += ["--action", case["action"]]
    if case.get("params_file"):
        cmd += ["--params", str(case_dir / case["params_file"])]
    if case.get("params_huge"):
        big = tmp_path / "huge.json"
        with big.open("wb") as f:
            f.write(b'{"tags": ["' + b"x" * case["params_huge"] + b'"]}')
        cmd += ["--params", str(big)]
    if case.get("env_file"):
        env["SYNAPSE_ENV_FILE"] = str(case_dir / case["env_file"])
    if case.get("output") == "file":
        blocker = tmp_path / "blocker"
        blocker.write_text("x")
        out = blocker / "out"
    cmd += ["--output", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=work, timeout=120)
    r = check_stream(RunResult(proc.returncode, parse_events(proc.stdout), None, proc.stdout, proc.stderr, out))

    assert r.exit_code == case["exit_code"], r.events[-2:]
    errors = r.of_type("error")
    assert len(errors) == 1
    e = errors[0]
    assert case["message"] in e["message"], e
    assert e["message"].strip() and not e["message"].startswith("Traceback")
    assert e["code"] == case["exit_code"]
    if case["exit_code"] in (2, 3):
        assert e.get("hint") or e.get("details"), e
    if case.get("field"):
        assert case["field"] in [x["loc"] for x in e["details"]["errors"]]
    assert proc.stderr == ""
    assert list(work.iterdir()) == []  # nothing written beside the output
    if case.get("output") != "file" and case["exit_code"] != 3 or out.exists():
        written = sorted(p.name for p in out.iterdir()) if out.exists() else []
        assert written in ([], ["result.json"])
        if written:
            assert json.loads((out / "result.json").read_text())["status"] == "failed"
