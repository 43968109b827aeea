"""`synapse-runtime merge` against what real runs leave: shards of another run, empty and short shards,
and a plugin other than digits (issue 14, items 1 and 2).

The shard outputs here are written by real `synapse-runtime run` processes (text-tools and digits),
with the environment an Indexed Job's pod gets (JOB_COMPLETION_INDEX, SYNAPSE_SHARD_COUNT,
SYNAPSE_RUN_ID from the controller-uid label), except where a test forges one file on purpose.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from synapse_runtime.errors import ValidationError
from synapse_runtime.contract.merge import merge_results, write_merged
from synapse_runtime.contract.sharding import ShardSpec, clear_shard_dir, params_digest, run_id_from_env

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "plugins"
TITLES = [f"Report number {i}: Q{i % 4 + 1} results" for i in range(11)]
RUN_A = "4c1f7a0e-0b5c-4d0e-9a51-6f6a2d1e0001"
RUN_B = "4c1f7a0e-0b5c-4d0e-9a51-6f6a2d1e0002"


def run_cli(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("SYNAPSE_", "JOB_COMPLETION"))}
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "synapse_runtime", *args], input=stdin, env=full,
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def run_shard(plugin: str, action: str, params: dict, out: Path, index: int, count: int, *,
              run_id: str | None, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {"JOB_COMPLETION_INDEX": str(index), "SYNAPSE_SHARD_COUNT": str(count), "SYNAPSE_GPU_PROBE": "0", **(extra or {})}
    if run_id is not None:
        env["SYNAPSE_RUN_ID"] = run_id
    return run_cli("run", "--plugin", str(PLUGINS / plugin), "--action", action, "--params", "-",
                   "--output", str(out), env=env, stdin=json.dumps(params))


def slug_shards(out: Path, count: int, run_id: str | None, titles: list[str] = TITLES) -> None:
    for i in range(count):
        r = run_shard("text-tools", "slugify", {"titles": titles}, out, i, count, run_id=run_id,
                      extra={"SYNAPSE_SHARD_KEY": "titles"})
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr


# -- a plugin other than digits: the generic rules ----------------------------------------------------


def test_text_tools_shards_merge_to_the_unsharded_result(tmp_path: Path) -> None:
    whole = run_cli("run", "--plugin", str(PLUGINS / "text-tools"), "--action", "slugify", "--params", "-",
                    "--output", str(tmp_path / "whole"), stdin=json.dumps({"titles": TITLES}))
    assert whole.returncode == 0, whole.stderr
    reference = json.loads((tmp_path / "whole" / "result.json").read_text())["result"]

    out = tmp_path / "sharded"
    slug_shards(out, 4, RUN_A)
    info = json.loads((out / ShardSpec(1, 4).name / "result.json").read_text())["result"]["shard"]
    assert info["run_id"] == RUN_A and info["params_sha256"] == params_digest({"titles": TITLES})
    assert info["key"] == "titles"

    cli = run_cli("merge", str(out))  # no --key: `slugs` is the one list that fits every slice
    assert cli.returncode == 0, cli.stderr
    merged = json.loads((out / "result.json").read_text())["result"]
    assert merged["slugs"] == reference["slugs"]
    assert (merged["shards"], merged["total"], merged["run_id"]) == (4, len(TITLES), RUN_A)
    assert "results" not in merged and "accuracy" not in merged
    printed = json.loads(cli.stdout.strip().splitlines()[-1])
    assert printed["run_id"] == RUN_A and printed["total"] == len(TITLES)


# -- item 1: shards of an earlier run ------------------------------------------------------------------


def test_a_stale_shard_of_an_earlier_run_is_refused(tmp_path: Path) -> None:
    """Run A completes; run B (same Job name, so the same directories) loses shard 2 before it starts:
    A's succeeded shard 2 is still there. Before run identity, the merge used it without a word."""
    out = tmp_path / "runs" / "synapse-text-sharded"
    slug_shards(out, 4, RUN_A)
    for i in (0, 1, 3):  # run B: shard 2's pod is killed before the runtime starts
        r = run_shard("text-tools", "slugify", {"titles": TITLES}, out, i, 4, run_id=RUN_B, extra={"SYNAPSE_SHARD_KEY": "titles"})
        assert r.returncode == 0, r.stderr
    with pytest.raises(ValidationError) as e:
        merge_results(out)
    assert e.value.exit_code == 2
    assert ShardSpec(2, 4).name in e.value.message and "run" in e.value.message
    assert e.value.details["run_id"] == {RUN_B: [ShardSpec(i, 4).name for i in (0, 1, 3)], RUN_A: [ShardSpec(2, 4).name]}
    cli = run_cli("merge", str(out))
    assert cli.returncode == 2 and ShardSpec(2, 4).name in cli.stderr
    assert not (out / "result.json").exists(), "a refused merge writes nothing"


def test_merge_run_id_pins_the_run(tmp_path: Path) -> None:
    """Every shard left by run A, none by run B (all of B's pods died early): only --run-id tells."""
    out = tmp_path / "out"
    slug_shards(out, 2, RUN_A)
    assert merge_results(out, run_id=RUN_A)["run_id"] == RUN_A
    with pytest.raises(ValidationError, match="another run") as e:
        merge_results(out, run_id=RUN_B)
    assert e.value.details["other_runs"] == {RUN_A: [ShardSpec(0, 2).name, ShardSpec(1, 2).name]}
    assert run_cli("merge", str(out), "--run-id", RUN_B).returncode == 2


def test_shards_with_other_params_are_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    slug_shards(out, 3, None)  # no run id (a laptop): the params hash still ties the shards together
    edited = TITLES[:-1] + ["Another title"]  # same length: ranges and totals agree
    r = run_shard("text-tools", "slugify", {"titles": edited}, out, 1, 3, run_id=None, extra={"SYNAPSE_SHARD_KEY": "titles"})
    assert r.returncode == 0
    with pytest.raises(ValidationError, match="params") as e:
        merge_results(out)
    assert ShardSpec(1, 3).name in e.value.message


def test_a_shard_clears_what_an_earlier_run_left(tmp_path: Path) -> None:
    out = tmp_path / "out"
    slug_shards(out, 2, RUN_A)
    shard = out / ShardSpec(0, 2).name
    (shard / "old-predictions.jsonl").write_text('{"stale": true}\n')
    (shard / "nested").mkdir()
    # run B's shard 0 fails on its params (exit 2): what is there afterwards is run B's failure only
    r = run_shard("text-tools", "slugify", {"titles": TITLES, "max_length": 1}, out, 0, 2, run_id=RUN_B,
                  extra={"SYNAPSE_SHARD_KEY": "titles"})
    assert r.returncode == 2, r.stdout[-1000:]
    assert sorted(p.name for p in shard.iterdir()) == ["result.json"]
    doc = json.loads((shard / "result.json").read_text())
    assert doc["status"] == "failed" and doc["shard"]["run_id"] == RUN_B
    with pytest.raises(ValidationError, match="failed shards"):
        merge_results(out)


def test_clear_shard_dir_touches_only_shard_directories(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        clear_shard_dir(tmp_path)
    assert clear_shard_dir(tmp_path / ShardSpec(0, 1).name) == []  # not there yet: nothing to do


@pytest.mark.parametrize("value", ["__RUN_ID__", "two words", "x" * 200, "-leading-dash"])
def test_bad_run_id_is_invalid_input(value: str) -> None:
    with pytest.raises(ValidationError) as e:
        run_id_from_env({"SYNAPSE_RUN_ID": value})
    assert e.value.exit_code == 2 and "metadata.uid" in (e.value.hint or "")


# -- item 2: empty and short shards ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("train")
    r = run_cli("run", "--plugin", str(PLUGINS / "digits"), "--action", "train", "--params", "-", "--output", str(out),
                env={"SYNAPSE_GPU_PROBE": "0"}, stdin=json.dumps({"epochs": 2}))
    assert r.returncode == 0, r.stdout[-2000:]
    return out / "checkpoint"


@pytest.fixture(scope="module")
def digits_shards(tmp_path_factory: pytest.TempPathFactory, digits_checkpoint: Path) -> Path:
    """3 inputs over 5 shards of digits `infer`, run side by side as an Indexed Job's pods would."""
    inputs = [[float((i * 7 + j) % 17) for j in range(64)] for i in range(3)]
    out = tmp_path_factory.mktemp("digits") / "out"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "synapse_runtime", "run", "--plugin", str(PLUGINS / "digits"), "--action", "infer",
             "--params", "-", "--output", str(out)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
            env={**{k: v for k, v in os.environ.items() if not k.startswith("SYNAPSE_")}, "JOB_COMPLETION_INDEX": str(i),
                 "SYNAPSE_SHARD_COUNT": "5", "SYNAPSE_RUN_ID": RUN_A, "SYNAPSE_GPU_PROBE": "0",
                 "SYNAPSE_CHECKPOINT": str(digits_checkpoint)},
        )
        for i in range(5)
    ]
    for p in procs:
        stdout, stderr = p.communicate(json.dumps({"inputs": inputs}), timeout=180)
        assert p.returncode == 0, stdout[-2000:] + stderr
    return out


def test_digits_three_inputs_over_five_shards(digits_shards: Path) -> None:
    """The reproduction of issue 14: 3 inputs over 5 shards merged into 43 results (the empty shards
    predicted the plugin's 20 held-out samples). Now an empty slice predicts nothing: 3 results."""
    empty = json.loads((digits_shards / ShardSpec(4, 5).name / "result.json").read_text())["result"]
    assert empty.get("results", []) == [] and empty["processed_count"] == 0
    assert empty["shard"]["start"] == empty["shard"]["stop"] == 3
    assert (digits_shards / ShardSpec(4, 5).name / "predictions.jsonl").read_text() == ""
    merged = merge_results(digits_shards, run_id=RUN_A)
    assert len(merged["results"]) == merged["total"] == merged["processed_count"] == 3


def test_an_empty_shard_that_returned_items_is_refused(tmp_path: Path, digits_shards: Path) -> None:
    """What the digits example did before: an empty slice, 20 default predictions."""
    out = tmp_path / "out"
    shutil.copytree(digits_shards, out)
    path = out / ShardSpec(4, 5).name / "result.json"
    doc = json.loads(path.read_text())
    doc["result"]["results"] = [{"prediction": i % 10, "confidence": 0.9, "label": i % 10} for i in range(20)]
    path.write_text(json.dumps(doc))
    with pytest.raises(ValidationError) as e:
        merge_results(out)
    assert e.value.exit_code == 2
    assert f"{ShardSpec(4, 5).name} returned 20 for 0 inputs" in e.value.message
    assert e.value.details["item_counts"] == [{"shard": ShardSpec(4, 5).name, "start": 3, "stop": 3, "expected": 0, "got": 20}]


def _forge(out: Path, index: int, count: int, results: list) -> None:
    path = out / ShardSpec(index, count).name / "result.json"
    doc = json.loads(path.read_text())
    doc["result"]["slugs"] = results
    path.write_text(json.dumps(doc))


def test_a_short_shard_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    slug_shards(out, 3, RUN_A)
    path = out / ShardSpec(1, 3).name / "result.json"
    _forge(out, 1, 3, json.loads(path.read_text())["result"]["slugs"][:-1])  # dropped an item
    with pytest.raises(ValidationError, match="returned 3 for 4 inputs"):
        merge_results(out, key="slugs")
    with pytest.raises(ValidationError):
        write_merged(out, key="slugs")
    assert not (out / "result.json").exists()


def test_ambiguous_item_list_asks_for_key(tmp_path: Path) -> None:
    out = tmp_path / "out"
    slug_shards(out, 2, RUN_A, titles=TITLES[:4])
    for i in range(2):
        path = out / ShardSpec(i, 2).name / "result.json"
        doc = json.loads(path.read_text())
        doc["result"]["also"] = list(doc["result"]["slugs"])
        path.write_text(json.dumps(doc))
    with pytest.raises(ValidationError, match="cannot tell") as e:
        merge_results(out)
    assert "--key" in e.value.hint
    assert merge_results(out, key="also")["also"] == merge_results(out, key="slugs")["slugs"]
