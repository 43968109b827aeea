"""The action's working directory (synapse_runtime/contract/workdir.py): real directories, links and chdir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from synapse_runtime import workdir


@pytest.fixture
def plugin(tmp_path: Path) -> Path:
    root = tmp_path / "plugin"
    (root / "pkg").mkdir(parents=True)
    (root / "config.yaml").write_text("code: p\n")
    (root / "pkg" / "data.txt").write_text("data")
    return root


def test_a_writable_plugin_dir_is_the_working_dir_and_the_callers_comes_back(plugin: Path, tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with workdir.action_workdir(plugin) as cwd:
        assert cwd == plugin and os.getcwd() == str(plugin)
        Path("scratch.tmp").write_text("x")
    assert os.getcwd() == str(tmp_path) and (plugin / "scratch.tmp").is_file()


def test_otherwise_a_linked_per_run_dir_removed_afterwards_even_on_failure(plugin: Path, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(workdir, "_writable", lambda path: False)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    with pytest.raises(RuntimeError):
        with workdir.action_workdir(plugin) as cwd:
            assert cwd.parent == tmp_path / "tmp" and os.getcwd() == str(cwd)
            assert Path("config.yaml").read_text() == "code: p\n" and Path("pkg/data.txt").read_text() == "data"
            assert os.path.islink("pkg")
            Path("scratch.tmp").write_text("x")  # writable, and not in the plugin
            raise RuntimeError("the action failed")
    assert not cwd.exists() and os.getcwd() == str(tmp_path)
    assert not (plugin / "scratch.tmp").exists() and (plugin / "pkg" / "data.txt").is_file()  # links only removed


def test_relative_path_knobs_keep_naming_what_they_named(plugin: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SYNAPSE_CACHE_DIR", "cache")
    env = {"SYNAPSE_CACHE_DIR": "cache", "SYNAPSE_MODELS_FILE": "/abs/models.json", "OTHER": "rel"}
    with workdir.action_workdir(plugin, env):
        assert env == {"SYNAPSE_CACHE_DIR": str(tmp_path / "cache"), "SYNAPSE_MODELS_FILE": "/abs/models.json",
                       "OTHER": "rel"}
        assert os.environ["SYNAPSE_CACHE_DIR"] == str(tmp_path / "cache")
