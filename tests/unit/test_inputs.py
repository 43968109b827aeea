"""The contract's input sources and their precedence (docs/contract.md)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from synapse_runtime import inputs
from synapse_runtime.errors import ValidationError


def test_params_precedence_first_source_wins_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f_opt = tmp_path / "opt.json"
    f_opt.write_text('{"from": "option"}')
    f_env = tmp_path / "env.yaml"
    f_env.write_text("from: env-file\nextra: 1\n")
    env = {"SYNAPSE_ACTION_PARAMS": '{"from": "env-json"}', "SYNAPSE_ACTION_PARAMS_FILE": str(f_env)}
    assert inputs.resolve_params(str(f_opt), env).value == {"from": "option"}
    assert inputs.resolve_params(None, env).value == {"from": "env-json"}
    del env["SYNAPSE_ACTION_PARAMS"]
    assert inputs.resolve_params(None, env).value == {"from": "env-file", "extra": 1}
    monkeypatch.setattr(inputs, "DEFAULT_PARAMS_FILES", (str(tmp_path / "none.json"), str(f_opt)))
    assert inputs.resolve_params(None, {}).value == {"from": "option"}
    monkeypatch.setattr(inputs, "DEFAULT_PARAMS_FILES", ())
    assert inputs.resolve_params(None, {}).value == {}


@pytest.mark.parametrize("raw,where,match", [
    (b'{"a": 1,,}', "p.json", r"not valid JSON: Expecting property name enclosed in double quotes at line 1, column 9"),
    (b"a: [1, 2\n", "p.yaml", "not valid YAML"),
    (b"\xff\xfe{}", "p.json", "not UTF-8"),
    (b"[1, 2]", "p.json", "must be an object"),
    (b"just a string", "p", "must be an object"),
])
def test_bad_params_name_source_and_place(raw: bytes, where: str, match: str) -> None:
    with pytest.raises(ValidationError, match=match) as err:
        inputs.parse_params(raw, where)
    assert err.value.exit_code == 2 and err.value.hint


def test_params_by_content_when_no_extension() -> None:
    assert inputs.parse_params(b'{"a": 1}', "stdin") == {"a": 1}
    assert inputs.parse_params(b"a: 1\nb: [x]\n", "stdin") == {"a": 1, "b": ["x"]}
    assert inputs.parse_params(b"", "stdin") == {}


def test_missing_params_file_says_how_to_mount(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="does not exist") as err:
        inputs.resolve_params(str(tmp_path / "nope.json"), {})
    assert "mount" in err.value.hint


def test_env_files_and_projected_directories(tmp_path: Path) -> None:
    f1 = tmp_path / "a.env"
    f1.write_text("A=file1\nB=file1\n")
    f2 = tmp_path / "b.env"
    f2.write_text("B=file2\n")
    # A Kubernetes-projected volume: visible names are symlinks through ..data to a timestamped dir.
    vol = tmp_path / "cm"
    ts = vol / "..2026_11_23_00_00_00.123"
    ts.mkdir(parents=True)
    (ts / "C").write_text("from-configmap\n")
    (ts / "MULTI").write_text("line1\nline2\n")
    os.symlink(ts.name, vol / "..data")
    os.symlink("..data/C", vol / "C")
    os.symlink("..data/MULTI", vol / "MULTI")
    sec = tmp_path / "secret"
    sec.mkdir()
    (sec / "API_PASSWORD_X").write_text("s3cr3t-value")
    (sec / "PLAIN_NAME").write_text("also-secret-because-volume")
    env = inputs.collect_env({
        "A": "process", "Z": "process",
        "SYNAPSE_ENV_FILE": f"{f1}:{f2}", "SYNAPSE_ENV_DIR": str(vol), "SYNAPSE_SECRET_DIR": str(sec),
    })
    d = env.data
    assert d["A"] == "file1" and d["B"] == "file2" and d["Z"] == "process"
    assert d["C"] == "from-configmap" and d["MULTI"] == "line1\nline2\n"
    assert "..data" not in d and not any(k.startswith("..") for k in d)
    assert env.secrets == {"s3cr3t-value", "also-secret-because-volume"}


def test_secret_named_env_keys_are_secrets() -> None:
    env = inputs.collect_env({
        "AWS_SECRET_ACCESS_KEY": "abcd1234", "SYNAPSE_ACCESS_TOKEN": "tok-xyz", "DB_PASSWORD": "pw-123",
        "MY_API_KEY": "key-999", "PLUGIN_AUTHOR": "alice-not-secret", "EPOCHS": "10000",
        "SYNAPSE_ENV_DIR": "", "SYNAPSE_SECRET_DIR": "",
    })
    assert env.secrets == {"abcd1234", "tok-xyz", "pw-123", "key-999"}


def test_job_id_plugin_dir_action_and_output_precedence(tmp_path: Path) -> None:
    assert inputs.resolve_job_id({"SYNAPSE_JOB_ID": "s", "RAY_JOB_ID": "r"}).value == "s"
    assert inputs.resolve_job_id({"RAY_JOB_ID": "r"}).value == "r"
    assert inputs.resolve_job_id({}).value == os.uname().nodename
    assert inputs.resolve_plugin_dir("/x", {"SYNAPSE_PLUGIN_DIR": "/y"}).value == Path("/x")
    assert inputs.resolve_plugin_dir(None, {"SYNAPSE_PLUGIN_DIR": "/y"}).value == Path("/y")
    assert inputs.resolve_plugin_dir(None, {}).value == Path("/plugin")
    env = {"SYNAPSE_ACTION": "train", "SYNAPSE_ACTION_ENTRYPOINT": "m.C"}
    assert inputs.resolve_action_ref("infer", env)[:2] == ("infer", None)
    assert inputs.resolve_action_ref("m:C", env)[:2] == (None, "m:C")
    assert inputs.resolve_action_ref(None, env)[:2] == ("train", None)
    assert inputs.resolve_action_ref(None, {"SYNAPSE_ACTION_ENTRYPOINT": "m.C"})[:2] == (None, "m.C")
    assert inputs.resolve_output_dir("/o", {"SYNAPSE_OUTPUT_DIR": "/e"}).value == Path("/o")
    assert inputs.resolve_output_dir(None, {"SYNAPSE_OUTPUT_DIR": "/e"}).value == Path("/e")
    assert inputs.resolve_checkpoint(None, {"SYNAPSE_CHECKPOINT": "s3://b/k"}) == ("s3://b/k", "base")
    assert inputs.resolve_checkpoint("x", {"SYNAPSE_CHECKPOINT_CATEGORY": "ft"}) == ("x", "ft")
