"""``synapse-runtime merge``: the shards of one sharded run combined into one result, or a clear refusal.

Separate from :mod:`synapse_runtime.contract.sharding` (what a shard does when it starts) because nothing
here runs inside an action: the merge reads the ``shard-*/result.json`` files a set of runs left
and decides whether they are one complete, consistent run. It refuses (``ValidationError``, exit 2,
every problem named) when a shard is missing, duplicated, failed, unreadable, from another run
(``run_id`` or ``params_sha256`` differ, or differ from ``--run-id``), when the slices do not
tile the inputs, or when a shard returned a different number of items than its slice holds.

The combination rules are generic, for any plugin's result shape (docs/kubernetes.md, "Merging"):

* ``result[key]`` (the per-item list: ``--key``, else ``results``, else the one list field whose
  length equals every shard's slice) is concatenated in shard order; each shard must hold exactly
  one item per input of its slice (a shard with an empty slice may leave the list out);
* integers named ``count`` or ``*_count`` are summed (``processed_count``);
* booleans are and-ed (``success``: every shard succeeded);
* any other field equal in every shard (value and type) is kept;
* any other field that differs between shards is not combined: it is listed per shard under
  ``per_shard`` (a mean, a ratio or a timing of one shard is not the whole set's);
* plus ``shards``, ``total``, ``run_id`` and ``params_sha256``.

Standard library only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ValidationError
from .sharding import DEFAULT_RESULT_KEY, SHARD_DIR_RE

IDENTITY_FIELDS = ("run_id", "params_sha256")


@dataclass
class _Shard:
    path: Path
    index: int | None
    count: int | None
    doc: dict | None
    info: dict | None

    @property
    def name(self) -> str:
        return self.path.parent.name


def _load_shard(path: Path) -> _Shard:
    """One shard's ``result.json``: its shard info from ``result["shard"]`` (or a top-level ``shard``),
    else from the directory name (failed runs have no result)."""
    match = SHARD_DIR_RE.match(path.parent.name)
    by_name = (int(match.group(1)), int(match.group(2))) if match else (None, None)
    if not path.is_file():  # killed before it could write one (SIGKILL, OOM, node loss)
        return _Shard(path, *by_name, None, None)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return _Shard(path, *by_name, None, {"unreadable": str(e)})
    if not isinstance(doc, dict):
        return _Shard(path, *by_name, None, {"unreadable": "not a JSON object"})
    result = doc.get("result")
    info = result.get("shard") if isinstance(result, dict) else None
    if not isinstance(info, dict):
        info = doc.get("shard") if isinstance(doc.get("shard"), dict) else None
    if info is not None and isinstance(info.get("index"), int) and isinstance(info.get("count"), int):
        return _Shard(path, info["index"], info["count"], doc, info)
    return _Shard(path, *by_name, doc, None)


def _fail(message: str, problems: dict[str, Any], hint: str | None = None) -> None:
    raise ValidationError(message, details={k: v for k, v in problems.items() if v}, hint=hint)


def _collect(source: str | Path) -> list[_Shard]:
    root = Path(source)
    if not root.is_dir():
        raise ValidationError(
            f"merge source {root} is not a directory",
            hint="pass the output directory that holds the shard-NNNNN-of-NNNNN/ directories",
        )
    dirs = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("shard-"))
    if not dirs:
        raise ValidationError(
            f"no shard-*/ directories under {root}",
            hint="run the shards first (SYNAPSE_SHARD_INDEX/SYNAPSE_SHARD_COUNT, or an Indexed Job), "
            "with this directory as their output",
        )
    return [_load_shard(d / "result.json") for d in dirs]


def _error_message(doc: dict) -> Any:
    error = doc.get("error")
    return error.get("message") if isinstance(error, dict) else error


def _complete_set(source: str | Path, shards: list[_Shard]) -> list[_Shard]:
    """Shards ``0..count-1``, each exactly once, all succeeded, with shard info: in index order."""
    incomplete = [s.name for s in shards if s.doc is None and s.info is None]
    unreadable = {s.name: s.info["unreadable"] for s in shards if s.info and "unreadable" in s.info}
    loaded = [s for s in shards if s.doc is not None]
    unknown = [s.name for s in loaded if s.index is None]

    counts = sorted({s.count for s in shards if s.count is not None})
    if len(counts) > 1:
        _fail(
            f"shards disagree on the shard count: {counts}",
            {"counts": {s.name: s.count for s in shards}},
            hint="remove the output of earlier runs with a different SYNAPSE_SHARD_COUNT",
        )
    if not counts:
        _fail(f"no shard in {source} says which shard it is", {"unidentified": unknown, "incomplete": incomplete})
    count = counts[0]

    by_index: dict[int, list[_Shard]] = {}
    for s in loaded:
        if s.index is not None:
            by_index.setdefault(s.index, []).append(s)
    missing = [i for i in range(count) if i not in by_index]
    duplicate = {i: [s.name for s in group] for i, group in sorted(by_index.items()) if len(group) > 1}
    out_of_range = sorted(i for i in by_index if not 0 <= i < count)
    failed = {
        s.name: {"index": s.index, "status": s.doc.get("status"), "exit_code": s.doc.get("exit_code"),
                 "error": _error_message(s.doc)}
        for s in loaded if s.doc.get("status") != "succeeded"
    }
    no_info = [s.name for s in loaded if s.doc.get("status") == "succeeded" and s.info is None]
    if missing or duplicate or failed or out_of_range or unknown or unreadable or no_info:
        parts = []
        if missing:
            parts.append(f"missing shards {missing}")
        if incomplete:
            parts.append(f"no result.json in {incomplete} (killed before it finished?)")
        if duplicate:
            parts.append(f"duplicate shards {sorted(duplicate)}")
        if failed:
            parts.append("failed shards " + ", ".join(f"{n} ({v['status']}, exit {v['exit_code']})" for n, v in failed.items()))
        if out_of_range:
            parts.append(f"shard indexes out of range for {count} shards: {out_of_range}")
        if unreadable:
            parts.append(f"unreadable result.json in {sorted(unreadable)}")
        if unknown or no_info:
            parts.append(f"results without shard info in {sorted(set(unknown + no_info))}")
        _fail(
            f"cannot merge {source}: " + "; ".join(parts),
            {"count": count, "missing": missing, "duplicate": duplicate, "failed": failed,
             "out_of_range": out_of_range, "unreadable": unreadable, "incomplete": incomplete,
             "no_shard_info": sorted(set(unknown + no_info))},
            hint="rerun the missing or failed shards alone (same params, SYNAPSE_SHARD_INDEX=i or that Job index), "
            "and remove stray duplicate directories, then merge again",
        )
    return [by_index[i][0] for i in range(count)]


def _check_run(ordered: list[_Shard], run_id: str | None) -> dict[str, Any]:
    """Every shard of the same run (``run_id``) with the same params (``params_sha256``): else exit 2,
    naming the odd shards. A shard of an earlier run is what a pod killed before it started leaves."""
    identity: dict[str, Any] = {}
    for field in IDENTITY_FIELDS:
        groups: dict[Any, list[str]] = {}
        for s in ordered:
            groups.setdefault(s.info.get(field), []).append(s.name)
        wanted = run_id if field == "run_id" and run_id is not None else None
        if wanted is not None and set(groups) != {wanted}:
            others = {str(k): v for k, v in groups.items() if k != wanted}
            _fail(
                f"shards of another run than {wanted}: " + "; ".join(f"{v} (run {k})" for k, v in others.items()),
                {"run_id": wanted, "other_runs": others},
                hint="these were left by an earlier run (a pod killed before it started clears nothing): "
                "rerun those shards in this run, then merge again",
            )
        if len(groups) > 1:
            majority = max(groups.items(), key=lambda kv: len(kv[1]))[0]
            odd = {str(k): v for k, v in groups.items() if k != majority}
            what = "run" if field == "run_id" else "params"
            _fail(
                f"shards of different {what}s: {sum(map(len, odd.values()))} of {len(ordered)} disagree on {field} "
                f"({', '.join(n for v in odd.values() for n in v)})",
                {field: {str(k): v for k, v in groups.items()}},
                hint="a shard of an earlier run (or other params) is still in place: rerun it in this run "
                f"(the same Job, or {'SYNAPSE_RUN_ID set to this run' if field == 'run_id' else 'the same params'}), "
                "then merge again",
            )
        identity[field] = next(iter(groups))
    return identity


def _check_tiling(ordered: list[_Shard]) -> int:
    totals = sorted({s.info.get("total") for s in ordered}, key=repr)
    if len(totals) != 1 or not isinstance(totals[0], int):
        _fail(
            f"shards disagree on the number of inputs: {totals}",
            {"totals": {s.name: s.info.get("total") for s in ordered}},
            hint="every shard must run with the same params",
        )
    total = totals[0]
    keys = sorted({str(s.info.get("key")) for s in ordered})
    if len(keys) != 1:
        _fail(f"shards split different params keys: {keys}", {"keys": keys}, hint="set the same SYNAPSE_SHARD_KEY for every shard")
    expected = 0
    gaps: list[dict[str, Any]] = []
    for s in ordered:
        start, stop = s.info.get("start"), s.info.get("stop")
        if not isinstance(start, int) or not isinstance(stop, int) or start != expected or stop < start:
            gaps.append({"shard": s.index, "start": start, "stop": stop, "expected_start": expected})
        expected = stop if isinstance(stop, int) else expected
    if gaps or expected != total:
        _fail(
            f"shard ranges do not tile 0..{total} (overlapping, gapped or out of order)",
            {"ranges": [{"shard": s.index, "start": s.info.get("start"), "stop": s.info.get("stop")} for s in ordered],
             "problems": gaps, "covered_to": expected, "total": total},
            hint="every shard must run with the same params and the same runtime version",
        )
    return total


def _slice_len(s: _Shard) -> int:
    return int(s.info["stop"]) - int(s.info["start"])


def _items(s: _Shard, result: dict, key: str) -> Any:
    """``result[key]``; a shard with an empty slice may leave the list out (nothing to report)."""
    if key not in result and _slice_len(s) == 0:
        return []
    return result.get(key)


def _item_key(ordered: list[_Shard], results: list[dict], key: str | None) -> str:
    """``key`` when given; else ``results`` when every shard has that list; else the one list field
    whose length equals the slice of every shard."""
    if key is not None:
        return key
    if all(isinstance(_items(s, r, DEFAULT_RESULT_KEY), list) for s, r in zip(ordered, results)):
        return DEFAULT_RESULT_KEY
    fields = {f for r in results for f, v in r.items() if isinstance(v, list)}
    fits = sorted(f for f in fields if all(isinstance(_items(s, r, f), list) and len(_items(s, r, f)) == _slice_len(s)
                                           for s, r in zip(ordered, results)))
    if len(fits) == 1:
        return fits[0]
    _fail(
        f"cannot tell which list in the shard results holds one item per input: {fits or sorted(fields) or 'none'}",
        {"candidates": fits or sorted(fields)},
        hint=f"name it with --key (default {DEFAULT_RESULT_KEY!r})",
    )
    raise AssertionError  # unreachable: _fail raises


def _check_items(ordered: list[_Shard], results: list[dict], key: str) -> None:
    """Each shard returned exactly one item per input of its slice: an empty shard that predicted
    something else (a plugin's default samples), or a shard that dropped items, is refused."""
    for s, r in zip(ordered, results):
        r[key] = _items(s, r, key)
    lacking = [s.name for s, r in zip(ordered, results) if not isinstance(r.get(key), list)]
    if lacking:
        _fail(
            f"shard results have no list {key!r} to concatenate: {lacking}",
            {"lacking": lacking},
            hint=f"pass the result's list field with --key (default {DEFAULT_RESULT_KEY!r})",
        )
    wrong = [{"shard": s.name, "start": s.info["start"], "stop": s.info["stop"], "expected": _slice_len(s), "got": len(r[key])}
             for s, r in zip(ordered, results) if len(r[key]) != _slice_len(s)]
    if wrong:
        _fail(
            f"shards returned another number of {key!r} than their slice holds: "
            + ", ".join(f"{w['shard']} returned {w['got']} for {w['expected']} inputs ({w['start']}..{w['stop']})" for w in wrong),
            {"item_counts": wrong},
            hint=f"a sharded action must return one item per input under {key!r}, in input order "
            "(an empty slice: none); fix the action, or name the per-item list with --key",
        )


def _is_count_field(name: str) -> bool:
    return name == "count" or name.endswith("_count")


def _combine(results: list[dict], ordered: list[_Shard], key: str, total: int, identity: dict[str, Any]) -> dict:
    merged: dict[str, Any] = {}
    fields = [f for f in dict.fromkeys(f for r in results for f in r) if f not in (key, "shard")]
    per_shard: list[dict[str, Any]] = [
        {"index": s.index, "start": s.info["start"], "stop": s.info["stop"], key: len(r[key]),
         "job_id": s.doc.get("job_id"), "duration_s": s.doc.get("duration_s")}
        for s, r in zip(ordered, results)
    ]
    for field in fields:
        values = [r.get(field) for r in results]
        present = [v for v in values if v is not None]
        if _is_count_field(field) and present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
            merged[field] = sum(present)
        elif present and len(present) == len(values) and all(isinstance(v, bool) for v in present):
            merged[field] = all(present)
        elif all(v == values[0] and type(v) is type(values[0]) for v in values):
            merged[field] = values[0]
        else:
            for entry, v in zip(per_shard, values):
                entry[field] = v
    merged[key] = [item for r in results for item in r[key]]
    merged.update(shards=len(ordered), total=total, **identity, per_shard=per_shard)
    return merged


def _merge_docs(source: str | Path, key: str | None, run_id: str | None) -> tuple[dict, list[_Shard], str]:
    ordered = _complete_set(source, _collect(source))
    identity = _check_run(ordered, run_id)
    total = _check_tiling(ordered)
    results = [s.doc.get("result") for s in ordered]
    not_dicts = [s.name for s, r in zip(ordered, results) if not isinstance(r, dict)]
    if not_dicts:
        _fail(f"shard results are not objects: {not_dicts}", {"lacking": not_dicts},
              hint="a sharded action returns an object with one item per input in a list")
    key = _item_key(ordered, results, key)
    _check_items(ordered, results, key)
    return _combine(results, ordered, key, total, identity), ordered, key


def merge_results(source: str | Path, *, key: str | None = None, run_id: str | None = None) -> dict:
    """Merge the shard outputs under ``source`` (``<source>/shard-*/result.json``) into one result.

    ``key`` names the per-item list (default: ``results``, else the one list that fits every slice);
    ``run_id``, when given, is the run every shard must belong to. Raises ``ValidationError`` (exit 2)
    naming every problem; the combination rules are the module's docstring.
    """
    merged, _, _ = _merge_docs(source, key, run_id)
    return merged


def _atomic_write(path: Path, text: str) -> None:
    from .outputs import write_atomic  # temp file, fsync, rename: a reader never sees half of it

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)


def _span_seconds(started: str | None, finished: str | None) -> float | None:
    if not started or not finished:
        return None
    from datetime import datetime

    try:
        a = datetime.fromisoformat(started.replace("Z", "+00:00"))
        b = datetime.fromisoformat(finished.replace("Z", "+00:00"))
    except ValueError:
        return None
    seconds = (b - a).total_seconds()
    return round(seconds, 3) if math.isfinite(seconds) else None


def write_merged(source: str | Path, dest: str | Path | None = None, *, key: str | None = None,
                 run_id: str | None = None) -> Path:
    """Merge (as :func:`merge_results`) and write a ``result.json`` shaped like a run's, atomically.

    ``dest`` is a directory (``dest/result.json``) or a ``.json`` file path; default ``source``
    itself. Line files every shard wrote (``*.jsonl``, e.g. ``predictions.jsonl``) are concatenated
    in shard order beside it. Nothing is written when the merge is refused.
    """
    merged, ordered, _ = _merge_docs(source, key, run_id)
    dest_path = Path(dest) if dest is not None else Path(source)
    target = dest_path if dest_path.suffix == ".json" else dest_path / "result.json"
    docs = [s.doc for s in ordered]
    started = min((d.get("started_at") for d in docs if d.get("started_at")), default=None)
    finished = max((d.get("finished_at") for d in docs if d.get("finished_at")), default=None)
    first = docs[0]
    doc = {
        "status": "succeeded",
        "result": merged,
        "error": None,
        "job_id": first.get("job_id"),
        "plugin": first.get("plugin"),
        "action": first.get("action"),
        "started_at": started,
        "finished_at": finished,
        "duration_s": _span_seconds(started, finished),
        "exit_code": 0,
        "merged_from": [s.name for s in ordered],
    }
    names = [sorted(p.name for p in s.path.parent.glob("*.jsonl") if p.is_file()) for s in ordered]
    common = set(names[0]).intersection(*map(set, names[1:])) if names else set()
    for name in sorted(common):
        parts = []
        for s in ordered:
            text = (s.path.parent / name).read_text(encoding="utf-8")
            parts.append(text if not text or text.endswith("\n") else text + "\n")
        _atomic_write(target.parent / name, "".join(parts))
    _atomic_write(target, json.dumps(doc, indent=2, ensure_ascii=True) + "\n")  # last: its presence means done
    return target


def summary(merged: Mapping[str, Any], key: str | None = None) -> dict[str, Any]:
    """The merged result without its per-item list and per-shard details: what the CLI prints."""
    drop = {key or DEFAULT_RESULT_KEY, "per_shard"}
    return {k: (f"{len(v)} items" if isinstance(v, list) and len(v) > 20 else v) for k, v in merged.items() if k not in drop}


__all__ = ["IDENTITY_FIELDS", "merge_results", "summary", "write_merged"]
