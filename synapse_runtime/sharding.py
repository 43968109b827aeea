"""Sharded batch inference: which slice of the inputs a run handles, and merging the shards' results.

A sharded run is one of ``count`` runs over the same params; run ``index`` takes a contiguous,
balanced slice of ``params[key]`` (a list), writes its output under ``<output>/<spec.name>/`` and
records the slice in ``result["shard"]``. ``synapse-runtime merge`` then checks that every shard
ran exactly once and succeeded, and concatenates their results in index order, so the merged
result equals that of one unsharded run.

Where the index and count come from (:func:`shard_from_env`), highest precedence first:

* ``SYNAPSE_SHARD_INDEX`` with ``SYNAPSE_SHARD_COUNT`` (anywhere: docker, Ray, a laptop);
* ``JOB_COMPLETION_INDEX`` (set by Kubernetes in an Indexed Job's pods) with
  ``SYNAPSE_SHARD_COUNT`` (Kubernetes does not expose ``completions`` to the pod: set it to the
  same number in the manifest).

Standard library only, and cheap to import: the runner imports it on every run.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ValidationError

ENV_INDEX = "SYNAPSE_SHARD_INDEX"
ENV_COUNT = "SYNAPSE_SHARD_COUNT"
ENV_KEY = "SYNAPSE_SHARD_KEY"
ENV_K8S_INDEX = "JOB_COMPLETION_INDEX"
DEFAULT_KEY = "inputs"
DEFAULT_RESULT_KEY = "results"

#: Directory names of shard outputs: ``shard-00003-of-00008``.
SHARD_DIR_RE = re.compile(r"^shard-(\d+)-of-(\d+)$")
_INT_RE = re.compile(r"^[0-9]+$")


@dataclass(frozen=True)
class ShardSpec:
    """Shard ``index`` (0-based) of ``count``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        for field, value in (("index", self.index), ("count", self.count)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValidationError(f"shard {field} must be an integer, got {value!r}")
        if self.count < 1:
            raise ValidationError(
                f"shard count must be at least 1, got {self.count}",
                details={"errors": [{"loc": ["shard", "count"], "msg": "must be >= 1", "input": self.count}]},
            )
        if not 0 <= self.index < self.count:
            raise ValidationError(
                f"shard index {self.index} is out of range for {self.count} shards (0..{self.count - 1})",
                details={"errors": [{"loc": ["shard", "index"], "msg": f"must be in 0..{self.count - 1}", "input": self.index}]},
                hint=f"{ENV_COUNT} must equal the number of shards (an Indexed Job's completions)",
            )

    @property
    def name(self) -> str:
        """The shard's output directory name, e.g. ``shard-00003-of-00008``: sorts in index order."""
        return f"shard-{self.index:05d}-of-{self.count:05d}"

    def __str__(self) -> str:
        return f"shard {self.index} of {self.count}"


def _env_int(env: Mapping[str, str], name: str, *, minimum: int) -> int | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return None
    value = raw.strip()
    if not _INT_RE.match(value):
        raise ValidationError(
            f"{name}={raw!r} is not a non-negative integer",
            details={"errors": [{"loc": ["env", name], "msg": "not a non-negative integer", "input": raw}]},
            hint=f"set {name} to a whole number (e.g. {name}={minimum})",
        )
    number = int(value)
    if number < minimum:
        raise ValidationError(
            f"{name}={raw!r} must be at least {minimum}",
            details={"errors": [{"loc": ["env", name], "msg": f"must be >= {minimum}", "input": raw}]},
            hint=f"{ENV_COUNT} is the number of shards (an Indexed Job's completions)",
        )
    return number


def shard_from_env(env: Mapping[str, str]) -> ShardSpec | None:
    """The run's shard from the environment, ``None`` when the run is not sharded.

    ``ValidationError`` (exit 2: retrying cannot help) for a value that is not an integer, an index
    not below the count, a count below 1, or an index without a count (or a count without an index).
    """
    count = _env_int(env, ENV_COUNT, minimum=1)
    index = _env_int(env, ENV_INDEX, minimum=0)
    source = ENV_INDEX
    if index is None:
        index = _env_int(env, ENV_K8S_INDEX, minimum=0)
        source = ENV_K8S_INDEX
    if index is None and count is None:
        return None
    if count is None:
        raise ValidationError(
            f"{source}={env.get(source)} is set but {ENV_COUNT} is not: the number of shards is unknown",
            details={"errors": [{"loc": ["env", ENV_COUNT], "msg": "required with " + source, "input": None}]},
            hint=(
                f"set {ENV_COUNT} to the Indexed Job's completions"
                if source == ENV_K8S_INDEX
                else f"set {ENV_COUNT} to the number of shards"
            ),
        )
    if index is None:
        raise ValidationError(
            f"{ENV_COUNT}={env.get(ENV_COUNT)} is set but no shard index is: which shard is this run?",
            details={"errors": [{"loc": ["env", ENV_INDEX], "msg": "required with " + ENV_COUNT, "input": None}]},
            hint=f"set {ENV_INDEX} (0..{count - 1}), or run as a Kubernetes Indexed Job ({ENV_K8S_INDEX})",
        )
    if index >= count:
        raise ValidationError(
            f"{source}={index} is out of range for {ENV_COUNT}={count} (indexes are 0..{count - 1})",
            details={"errors": [{"loc": ["env", source], "msg": f"must be in 0..{count - 1}", "input": env.get(source)}]},
            hint=f"{ENV_COUNT} must equal the number of shards (an Indexed Job's completions)",
        )
    return ShardSpec(index, count)


def shard_range(total: int, spec: ShardSpec) -> range:
    """The items of ``range(total)`` that shard ``spec`` handles: contiguous, and balanced (the first
    ``total % count`` shards take one item more), so sizes differ by at most 1. Shards past the end
    (``count > total``) get an empty range."""
    if total < 0:
        raise ValueError(f"total must be >= 0, got {total}")
    base, extra = divmod(total, spec.count)
    start = spec.index * base + min(spec.index, extra)
    stop = start + base + (1 if spec.index < extra else 0)
    return range(start, stop)


def apply_shard(params: dict, spec: ShardSpec, key: str = DEFAULT_KEY) -> tuple[dict, dict]:
    """``params`` with ``params[key]`` cut to this shard's slice (a copy: ``params`` is untouched),
    and the shard info the run records as ``result["shard"]``."""
    if not isinstance(params, Mapping):
        raise ValidationError(
            f"{spec} needs params to be a mapping with a list under {key!r}, got {type(params).__name__}",
            hint=f"pass params as an object with a list under {key!r}",
        )
    if key not in params:
        raise ValidationError(
            f"{spec}: params have no {key!r} to split (keys: {sorted(map(str, params))[:20]})",
            details={"errors": [{"loc": ["params", key], "msg": "missing: a sharded run splits this list", "input": None}]},
            hint=f"set {ENV_KEY} to the name of the list to split, or pass a list under {key!r}",
        )
    items = params[key]
    if not isinstance(items, list):
        raise ValidationError(
            f"{spec}: params[{key!r}] is a {type(items).__name__}, not a list, so it cannot be split",
            details={"errors": [{"loc": ["params", key], "msg": "must be a list to shard", "input": type(items).__name__}]},
            hint=f"set {ENV_KEY} to the name of the list to split, or pass a list under {key!r}",
        )
    rng = shard_range(len(items), spec)
    sharded = dict(params)
    sharded[key] = items[rng.start : rng.stop]
    info = {"index": spec.index, "count": spec.count, "key": key, "start": rng.start, "stop": rng.stop, "total": len(items)}
    return sharded, info


# -- merging -------------------------------------------------------------------------------------------


def _is_count_field(name: str) -> bool:
    return name == "count" or name.endswith("_count")


def _recompute_accuracy(items: list[Any]) -> float | None:
    """Accuracy over items that carry ``prediction`` and a non-null ``label`` (rounded as the examples do)."""
    labelled = [r for r in items if isinstance(r, Mapping) and "prediction" in r and r.get("label") is not None]
    if not labelled:
        return None
    return round(sum(r["prediction"] == r["label"] for r in labelled) / len(labelled), 4)


@dataclass
class _Shard:
    path: Path
    index: int | None
    count: int | None
    doc: dict | None
    info: dict | None


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


def _merge_docs(source: str | Path, key: str) -> tuple[dict, list[_Shard]]:
    shards = _collect(source)
    incomplete = [s.path.parent.name for s in shards if s.doc is None and s.info is None]
    unreadable = {s.path.parent.name: s.info["unreadable"] for s in shards if s.info and "unreadable" in s.info}
    loaded = [s for s in shards if s.doc is not None]
    unknown = [s.path.parent.name for s in loaded if s.index is None]

    counts = sorted({s.count for s in shards if s.count is not None})
    if len(counts) > 1:
        _fail(
            f"shards disagree on the shard count: {counts}",
            {"counts": {s.path.parent.name: s.count for s in shards}},
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
    duplicate = {i: [str(s.path.parent.name) for s in group] for i, group in sorted(by_index.items()) if len(group) > 1}
    out_of_range = sorted(i for i in by_index if not 0 <= i < count)
    failed = {
        s.path.parent.name: {"index": s.index, "status": s.doc.get("status"), "exit_code": s.doc.get("exit_code"),
                             "error": (s.doc.get("error") or {}).get("message") if isinstance(s.doc.get("error"), dict) else s.doc.get("error")}
        for s in loaded if s.doc.get("status") != "succeeded"
    }
    no_info = [s.path.parent.name for s in loaded if s.doc.get("status") == "succeeded" and s.info is None]
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

    ordered = [by_index[i][0] for i in range(count)]
    totals = sorted({s.info.get("total") for s in ordered}, key=repr)
    if len(totals) != 1 or not isinstance(totals[0], int):
        _fail(
            f"shards disagree on the number of inputs: {totals}",
            {"totals": {s.path.parent.name: s.info.get("total") for s in ordered}},
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

    results = [s.doc.get("result") for s in ordered]
    lacking = [s.path.parent.name for s, r in zip(ordered, results) if not isinstance(r, dict) or not isinstance(r.get(key), list)]
    if lacking:
        _fail(
            f"shard results have no list {key!r} to concatenate: {lacking}",
            {"lacking": lacking},
            hint=f"pass the result's list field with --key (default {DEFAULT_RESULT_KEY!r})",
        )
    return _combine(results, ordered, key, count, total), ordered


def _combine(results: list[dict], ordered: list[_Shard], key: str, count: int, total: int) -> dict:
    merged: dict[str, Any] = {}
    items: list[Any] = []
    for r in results:
        items.extend(r[key])
    fields = [f for f in dict.fromkeys(f for r in results for f in r) if f not in (key, "shard")]
    per_shard: list[dict[str, Any]] = [
        {"index": s.index, "start": s.info["start"], "stop": s.info["stop"], key: len(r[key]), "job_id": s.doc.get("job_id"),
         "duration_s": s.doc.get("duration_s")}
        for s, r in zip(ordered, results)
    ]
    for field in fields:
        values = [r.get(field) for r in results]
        present = [v for v in values if v is not None]
        if _is_count_field(field) and present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
            merged[field] = sum(present)  # processed_count and other *_count fields add up
        elif present and all(isinstance(v, bool) for v in present) and len(present) == len(values):
            merged[field] = all(present)  # success: all shards succeeded
        elif all(v == values[0] for v in values):
            merged[field] = values[0]  # the same everywhere (steps_total, model path, ...): kept
        else:
            for entry, v in zip(per_shard, values):  # differs per shard (timings, ...): kept per shard
                entry[field] = v
    merged[key] = items
    accuracy = _recompute_accuracy(items)
    if accuracy is not None:
        merged["accuracy"] = accuracy
    elif "accuracy" in merged and len(results) > 1:
        merged.pop("accuracy")  # an equal per-shard accuracy is not the whole set's
    merged["shards"] = count
    merged["total"] = total
    merged["per_shard"] = per_shard
    return merged


def merge_results(source: str | Path, *, key: str = DEFAULT_RESULT_KEY) -> dict:
    """Merge the shard outputs under ``source`` (``<output>/shard-*/result.json``) into one result.

    Checks that shards ``0..count-1`` are all present exactly once, all succeeded, agree on the count
    and the number of inputs, and that their ranges tile ``0..total`` without overlap; raises
    ``ValidationError`` (exit 2) listing what is missing, duplicated or failed otherwise.

    The merged result: ``result[key]`` (default ``results``) concatenated in shard order; ``*_count``
    integers (``processed_count``) summed; booleans (``success``) and-ed; fields equal in every shard
    kept; ``accuracy`` recomputed over items that carry ``prediction`` and a ``label``; fields that
    differ per shard moved to ``per_shard``; plus ``shards`` (the count) and ``total`` (inputs).
    """
    merged, _ = _merge_docs(source, key)
    return merged


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # the rename itself survives a crash once the directory is synced
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def write_merged(source: str | Path, dest: str | Path | None = None, *, key: str = DEFAULT_RESULT_KEY) -> Path:
    """Merge (as :func:`merge_results`) and write a ``result.json`` shaped like a run's, atomically.

    ``dest`` is a directory (``dest/result.json``) or a ``.json`` file path; default ``source``
    itself, so ``<output>/result.json`` is the whole set's result next to the shard directories.
    Line files every shard wrote (``*.jsonl``, e.g. ``predictions.jsonl``) are concatenated in shard
    order beside it. Returns the path of the merged result.json.
    """
    merged, ordered = _merge_docs(source, key)
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
        "merged_from": [str(s.path.parent.name) for s in ordered],
    }
    _atomic_write(target, json.dumps(doc, indent=2, ensure_ascii=True) + "\n")
    names = [sorted(p.name for p in s.path.parent.glob("*.jsonl") if p.is_file()) for s in ordered]
    common = set(names[0]).intersection(*map(set, names[1:])) if names else set()
    for name in sorted(common):
        parts = []
        for s in ordered:
            text = (s.path.parent / name).read_text(encoding="utf-8")
            parts.append(text if not text or text.endswith("\n") else text + "\n")
        _atomic_write(target.parent / name, "".join(parts))
    return target


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


def shard_key_from_env(env: Mapping[str, str]) -> str:
    """The params key a sharded run splits: ``SYNAPSE_SHARD_KEY``, default ``inputs``."""
    return (env.get(ENV_KEY) or "").strip() or DEFAULT_KEY


__all__ = [
    "DEFAULT_KEY",
    "DEFAULT_RESULT_KEY",
    "ENV_COUNT",
    "ENV_INDEX",
    "ENV_K8S_INDEX",
    "ENV_KEY",
    "ShardSpec",
    "apply_shard",
    "merge_results",
    "shard_from_env",
    "shard_key_from_env",
    "shard_range",
    "write_merged",
]
