"""synapse_runtime.contract.sharding: shard selection from the environment, the split, and merging shard results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from synapse_runtime.errors import ExitCode, ValidationError
from synapse_runtime.contract.merge import merge_results, write_merged
from synapse_runtime.contract.sharding import (
    ShardSpec,
    apply_shard,
    shard_from_env,
    shard_range,
)

# -- ShardSpec -------------------------------------------------------------------------------------


def test_name_sorts_in_index_order() -> None:
    assert ShardSpec(3, 8).name == "shard-00003-of-00008"
    assert ShardSpec(0, 1).name == "shard-00000-of-00001"
    names = [ShardSpec(i, 12).name for i in range(12)]
    assert sorted(names) == names


@pytest.mark.parametrize("index,count", [(-1, 4), (4, 4), (0, 0), (5, 3)])
def test_spec_rejects_bad_values(index: int, count: int) -> None:
    with pytest.raises(ValidationError) as e:
        ShardSpec(index, count)
    assert e.value.exit_code == ExitCode.INVALID_INPUT


def test_spec_is_frozen_and_hashable() -> None:
    spec = ShardSpec(1, 2)
    with pytest.raises(AttributeError):
        spec.index = 0  # type: ignore[misc]
    assert {spec, ShardSpec(1, 2)} == {spec}


# -- shard_range -----------------------------------------------------------------------------------

PAIRS = [(t, c) for t in (0, 1, 2, 3, 5, 7, 10, 59, 60, 61, 100, 1000, 1001) for c in (1, 2, 3, 4, 7, 8, 16, 60, 64, 200)]


@pytest.mark.parametrize("total,count", PAIRS)
def test_ranges_tile_balanced_and_deterministic(total: int, count: int) -> None:
    ranges = [shard_range(total, ShardSpec(i, count)) for i in range(count)]
    # contiguous and covering 0..total, in index order, without overlap
    assert ranges[0].start == 0 and ranges[-1].stop == total
    for a, b in zip(ranges, ranges[1:]):
        assert a.stop == b.start
    assert [x for r in ranges for x in r] == list(range(total))
    # balanced: sizes differ by at most one, larger shards first
    sizes = [len(r) for r in ranges]
    assert max(sizes) - min(sizes) <= 1
    assert sizes == sorted(sizes, reverse=True)
    # count > total: the shards past the end are empty, none gets two while another has none
    if count > total:
        assert sizes == [1] * total + [0] * (count - total)
    # deterministic: the same answer every time, in another process too
    assert ranges == [shard_range(total, ShardSpec(i, count)) for i in range(count)]


def test_ranges_same_in_a_fresh_process() -> None:
    code = (
        "from synapse_runtime.contract.sharding import ShardSpec, shard_range;"
        "print([(r.start, r.stop) for r in (shard_range(1001, ShardSpec(i, 7)) for i in range(7))])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    here = [(r.start, r.stop) for r in (shard_range(1001, ShardSpec(i, 7)) for i in range(7))]
    assert out.strip() == str(here)


def test_range_rejects_negative_total() -> None:
    with pytest.raises(ValueError):
        shard_range(-1, ShardSpec(0, 1))


# -- shard_from_env --------------------------------------------------------------------------------


def test_unsharded_without_any_variable() -> None:
    assert shard_from_env({}) is None
    assert shard_from_env({"SYNAPSE_SHARD_INDEX": "", "SYNAPSE_SHARD_COUNT": " ", "JOB_COMPLETION_INDEX": ""}) is None


def test_synapse_variables() -> None:
    assert shard_from_env({"SYNAPSE_SHARD_INDEX": "2", "SYNAPSE_SHARD_COUNT": "4"}) == ShardSpec(2, 4)
    assert shard_from_env({"SYNAPSE_SHARD_INDEX": " 0 ", "SYNAPSE_SHARD_COUNT": "1"}) == ShardSpec(0, 1)


def test_kubernetes_indexed_job() -> None:
    assert shard_from_env({"JOB_COMPLETION_INDEX": "3", "SYNAPSE_SHARD_COUNT": "4"}) == ShardSpec(3, 4)


def test_synapse_index_beats_job_completion_index() -> None:
    env = {"SYNAPSE_SHARD_INDEX": "1", "JOB_COMPLETION_INDEX": "3", "SYNAPSE_SHARD_COUNT": "4"}
    assert shard_from_env(env) == ShardSpec(1, 4)


@pytest.mark.parametrize(
    "env,words",
    [
        ({"JOB_COMPLETION_INDEX": "0"}, ["SYNAPSE_SHARD_COUNT", "completions"]),
        ({"SYNAPSE_SHARD_INDEX": "0"}, ["SYNAPSE_SHARD_COUNT"]),
        ({"SYNAPSE_SHARD_COUNT": "4"}, ["SYNAPSE_SHARD_INDEX", "JOB_COMPLETION_INDEX"]),
        ({"SYNAPSE_SHARD_INDEX": "4", "SYNAPSE_SHARD_COUNT": "4"}, ["out of range", "0..3"]),
        ({"JOB_COMPLETION_INDEX": "9", "SYNAPSE_SHARD_COUNT": "4"}, ["JOB_COMPLETION_INDEX", "completions"]),
        ({"SYNAPSE_SHARD_INDEX": "0", "SYNAPSE_SHARD_COUNT": "0"}, ["at least 1"]),
        ({"SYNAPSE_SHARD_INDEX": "one", "SYNAPSE_SHARD_COUNT": "4"}, ["SYNAPSE_SHARD_INDEX", "integer"]),
        ({"SYNAPSE_SHARD_INDEX": "1", "SYNAPSE_SHARD_COUNT": "4.0"}, ["SYNAPSE_SHARD_COUNT", "integer"]),
        ({"SYNAPSE_SHARD_INDEX": "-1", "SYNAPSE_SHARD_COUNT": "4"}, ["SYNAPSE_SHARD_INDEX"]),
        ({"SYNAPSE_SHARD_INDEX": "__SHARD_INDEX__", "SYNAPSE_SHARD_COUNT": "4"}, ["__SHARD_INDEX__"]),
    ],
)
def test_bad_env_is_invalid_input_with_a_hint(env: dict, words: list[str]) -> None:
    with pytest.raises(ValidationError) as e:
        shard_from_env(env)
    err = e.value
    assert err.exit_code == ExitCode.INVALID_INPUT == 2
    text = f"{err.message} {err.hint or ''}"
    for word in words:
        assert word in text, text
    assert err.hint, "every shard error says what to do"


# -- apply_shard -----------------------------------------------------------------------------------


def test_apply_shard_slices_a_copy() -> None:
    params = {"inputs": list(range(10)), "batch_size": 4}
    got, info = apply_shard(params, ShardSpec(1, 3))
    assert got == {"inputs": [4, 5, 6], "batch_size": 4}
    assert info == {"index": 1, "count": 3, "key": "inputs", "start": 4, "stop": 7, "total": 10}
    assert params == {"inputs": list(range(10)), "batch_size": 4}  # untouched


def test_apply_shard_other_key_and_empty_shard() -> None:
    got, info = apply_shard({"images": ["a", "b"]}, ShardSpec(3, 4), key="images")
    assert got == {"images": []}
    assert info == {"index": 3, "count": 4, "key": "images", "start": 2, "stop": 2, "total": 2}


@pytest.mark.parametrize("params", [{}, {"samples": 20}, {"inputs": "a,b"}, {"inputs": {"a": 1}}, {"inputs": None}])
def test_apply_shard_needs_a_list(params: dict) -> None:
    with pytest.raises(ValidationError) as e:
        apply_shard(params, ShardSpec(0, 2))
    assert e.value.exit_code == 2
    assert "SYNAPSE_SHARD_KEY" in (e.value.hint or "")


# -- merge -----------------------------------------------------------------------------------------


def _doc(spec: ShardSpec, info: dict | None, results: list | None, *, status: str = "succeeded", **extra) -> dict:
    result = None
    if results is not None:
        result = {"success": True, "steps_executed": 4, "steps_total": 4, "processed_count": len(results),
                  "results": results, "shard": info, **extra}
    return {
        "status": status,
        "result": result if status == "succeeded" else None,
        "error": None if status == "succeeded" else {"error_type": "ExecutionError", "message": "boom", "details": None},
        "job_id": "job-1",
        "plugin": "digits",
        "action": "infer",
        "started_at": f"2026-11-23T09:10:1{spec.index}.000Z",
        "finished_at": f"2026-11-23T09:10:2{spec.index}.500Z",
        "duration_s": 10.5,
        "exit_code": 0 if status == "succeeded" else 1,
    }


def _predict(item: int) -> dict:
    return {"prediction": item % 10, "confidence": 0.9, "label": (item % 10) if item % 3 else (item + 1) % 10}


def make_shards(root: Path, total: int, count: int, *, skip: tuple[int, ...] = ()) -> list[dict]:
    """Shard outputs as the runner writes them: <root>/<spec.name>/result.json (+ predictions.jsonl)."""
    params = {"inputs": list(range(total))}
    for i in range(count):
        if i in skip:
            continue
        spec = ShardSpec(i, count)
        sharded, info = apply_shard(params, spec)
        results = [_predict(x) for x in sharded["inputs"]]
        d = root / spec.name
        d.mkdir(parents=True)
        (d / "result.json").write_text(json.dumps(_doc(spec, info, results, seconds=0.1 * i, accuracy=0.5 + 0.1 * i)))
        (d / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in results))
    return [_predict(x) for x in range(total)]


@pytest.mark.parametrize("total,count", [(60, 4), (7, 3), (3, 5), (1, 1), (0, 2)])
def test_merge_happy_path(tmp_path: Path, total: int, count: int) -> None:
    expected = make_shards(tmp_path, total, count)
    merged = merge_results(tmp_path)
    assert merged["results"] == expected
    assert merged["shards"] == count and merged["total"] == total
    assert merged["processed_count"] == total
    assert merged["success"] is True
    assert merged["steps_total"] == 4  # equal everywhere: kept
    assert "shard" not in merged
    # no plugin's knowledge in the merge: a per-shard figure that differs stays per shard
    if count > 1:
        assert "accuracy" not in merged and [p["accuracy"] for p in merged["per_shard"]] == [0.5 + 0.1 * i for i in range(count)]
    assert [p["index"] for p in merged["per_shard"]] == list(range(count))
    if count > 1 and total:
        assert "seconds" not in merged and [p["seconds"] for p in merged["per_shard"]] == [0.1 * i for i in range(count)]


def test_write_merged_is_a_result_json(tmp_path: Path) -> None:
    expected = make_shards(tmp_path / "out", 60, 4)
    path = write_merged(tmp_path / "out")
    assert path == tmp_path / "out" / "result.json"
    doc = json.loads(path.read_text())
    assert doc["status"] == "succeeded" and doc["exit_code"] == 0 and doc["error"] is None
    assert doc["plugin"] == "digits" and doc["action"] == "infer"
    assert doc["result"]["results"] == expected
    assert doc["started_at"] == "2026-11-23T09:10:10.000Z" and doc["finished_at"] == "2026-11-23T09:10:23.500Z"
    assert doc["duration_s"] == 13.5
    lines = (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == expected
    assert not list((tmp_path / "out").glob(".*tmp"))  # nothing half-written left behind
    # merging again (result.json now beside the shards) gives the same, and another dest works
    other = write_merged(tmp_path / "out", tmp_path / "elsewhere" / "merged.json")
    assert json.loads(other.read_text())["result"] == doc["result"]


def test_missing_shard(tmp_path: Path) -> None:
    make_shards(tmp_path, 60, 4, skip=(2,))
    with pytest.raises(ValidationError) as e:
        merge_results(tmp_path)
    assert e.value.exit_code == 2
    assert "missing shards [2]" in e.value.message
    assert e.value.details["missing"] == [2]
    assert "rerun" in e.value.hint


def test_killed_shard_without_result_json(tmp_path: Path) -> None:
    make_shards(tmp_path, 60, 4)
    (tmp_path / ShardSpec(1, 4).name / "result.json").unlink()  # SIGKILL: nothing written
    with pytest.raises(ValidationError) as e:
        merge_results(tmp_path)
    assert e.value.details["missing"] == [1]
    assert e.value.details["incomplete"] == [ShardSpec(1, 4).name]
    assert "killed" in e.value.message


def test_duplicate_shard(tmp_path: Path) -> None:
    make_shards(tmp_path, 60, 4)
    src = tmp_path / ShardSpec(1, 4).name
    copy = tmp_path / (ShardSpec(1, 4).name + "-retry")
    copy.mkdir()
    (copy / "result.json").write_text((src / "result.json").read_text())
    with pytest.raises(ValidationError) as e:
        merge_results(tmp_path)
    assert "duplicate shards [1]" in e.value.message
    assert sorted(e.value.details["duplicate"][1]) == sorted([src.name, copy.name])


def test_failed_shard(tmp_path: Path) -> None:
    make_shards(tmp_path, 60, 4)
    spec = ShardSpec(3, 4)
    (tmp_path / spec.name / "result.json").write_text(json.dumps(_doc(spec, None, None, status="failed")))
    with pytest.raises(ValidationError) as e:
        merge_results(tmp_path)
    assert "failed shards" in e.value.message and spec.name in e.value.message
    assert e.value.details["failed"][spec.name]["index"] == 3  # from the directory name: no result, no shard info
    assert e.value.details["failed"][spec.name]["exit_code"] == 1


def test_cancelled_shard_is_not_merged(tmp_path: Path) -> None:
    make_shards(tmp_path, 20, 2)
    spec = ShardSpec(0, 2)
    doc = json.loads((tmp_path / spec.name / "result.json").read_text())
    doc.update(status="cancelled", exit_code=143)
    (tmp_path / spec.name / "result.json").write_text(json.dumps(doc))
    with pytest.raises(ValidationError, match="cancelled, exit 143"):
        merge_results(tmp_path)


def test_overlapping_ranges(tmp_path: Path) -> None:
    make_shards(tmp_path, 60, 4)
    spec = ShardSpec(2, 4)
    path = tmp_path / spec.name / "result.json"
    doc = json.loads(path.read_text())
    doc["result"]["shard"]["start"] -= 5  # 25..45 overlaps shard 1's 15..30
    path.write_text(json.dumps(doc))
    with pytest.raises(ValidationError, match="do not tile") as e:
        merge_results(tmp_path)
    assert e.value.details["problems"][0]["shard"] == 2


def test_shards_of_different_runs(tmp_path: Path) -> None:
    make_shards(tmp_path, 60, 4)
    spec = ShardSpec(1, 4)
    path = tmp_path / spec.name / "result.json"
    doc = json.loads(path.read_text())
    doc["result"]["shard"]["total"] = 61
    path.write_text(json.dumps(doc))
    with pytest.raises(ValidationError, match="number of inputs"):
        merge_results(tmp_path)


def test_different_counts(tmp_path: Path) -> None:
    make_shards(tmp_path / "a", 60, 4)
    make_shards(tmp_path / "b", 60, 3)
    for d in (tmp_path / "b").iterdir():
        d.rename(tmp_path / "a" / d.name)
    with pytest.raises(ValidationError, match="shard count"):
        merge_results(tmp_path / "a")


def test_no_shards_and_no_directory(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="no shard"):
        merge_results(tmp_path)
    with pytest.raises(ValidationError, match="not a directory"):
        merge_results(tmp_path / "nope")


def test_result_without_the_list(tmp_path: Path) -> None:
    make_shards(tmp_path, 8, 2)
    with pytest.raises(ValidationError, match="'predictions'") as e:
        merge_results(tmp_path, key="predictions")
    assert "--key" in e.value.hint


def test_unreadable_result(tmp_path: Path) -> None:
    make_shards(tmp_path, 8, 2)
    (tmp_path / ShardSpec(0, 2).name / "result.json").write_text("{half")
    with pytest.raises(ValidationError, match="unreadable"):
        merge_results(tmp_path)


def test_cheap_to_import() -> None:
    code = "import sys, synapse_runtime.contract.sharding, synapse_runtime.contract.merge; print(sorted(m for m in ('pydantic', 'yaml', 'boto3', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"sharding pulled in {out.strip()}"


def test_shard_key_is_not_treated_as_a_secret() -> None:
    """SYNAPSE_SHARD_KEY ends in _KEY, the secret pattern: its value ("inputs") would be masked as *** in
    every event and result.json (shard info included), so it must be in the redactor's NOT_SECRET list."""
    from synapse_runtime.events.redact import is_secret_key, secret_values

    assert not is_secret_key("SYNAPSE_SHARD_KEY")
    assert secret_values({"SYNAPSE_SHARD_KEY": "inputs"}) == set()
