"""Sharded batch inference, the runner's side: which slice of the inputs a run handles, and which run it is.

A sharded run is one of ``count`` runs over the same params; run ``index`` takes a contiguous,
balanced slice of ``params[key]`` (a list), writes its output under ``<output>/<spec.name>/`` and
records the slice, the run it belongs to and a hash of the whole params in ``result["shard"]``.
``synapse-runtime merge`` (:mod:`synapse_runtime.contract.merge`) then checks that every shard ran exactly
once, in the same run, and returned one item per input, and combines their results.

A run's identity matters because shard directories have fixed names: a shard killed before it
writes would otherwise leave the previous run's ``result.json`` in place for the merge to pick up.
So a shard clears its directory first (:func:`clear_shard_dir`), and records ``run_id`` (the Job's
uid, ``SYNAPSE_RUN_ID``, from the ``batch.kubernetes.io/controller-uid`` label) and
``params_sha256`` (:func:`params_digest`), which the merge requires to agree.

Where the index and count come from (:func:`shard_from_env`), highest precedence first:

* ``SYNAPSE_SHARD_INDEX`` with ``SYNAPSE_SHARD_COUNT`` (anywhere: docker, Ray, a laptop);
* ``JOB_COMPLETION_INDEX`` (set by Kubernetes in an Indexed Job's pods) with
  ``SYNAPSE_SHARD_COUNT`` (Kubernetes does not expose ``completions`` to the pod: set it to the
  same number in the manifest).

Standard library only, and cheap to import: the runner imports it on every run.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from .knobs import KNOBS

if TYPE_CHECKING:
    from .settings import Settings

ENV_INDEX = "SYNAPSE_SHARD_INDEX"
ENV_COUNT = "SYNAPSE_SHARD_COUNT"
ENV_KEY = "SYNAPSE_SHARD_KEY"
ENV_K8S_INDEX = "JOB_COMPLETION_INDEX"
ENV_RUN_ID = "SYNAPSE_RUN_ID"
#: The list a sharded run splits when SYNAPSE_SHARD_KEY is unset: the knob table's default.
DEFAULT_KEY: str = KNOBS[ENV_KEY].default
DEFAULT_RESULT_KEY = "results"

#: Directory names of shard outputs: ``shard-00003-of-00008``.
SHARD_DIR_RE = re.compile(r"^shard-(\d+)-of-(\d+)$")
_INT_RE = re.compile(r"^[0-9]+$")
#: A run id: a Job uid, a JobSet uid, or any token without spaces (an unsubstituted ``__RUN_ID__`` fails).
_RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


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


def shard_key(settings: "Settings") -> str:
    """The params key a sharded run splits: ``SYNAPSE_SHARD_KEY`` (default: :data:`DEFAULT_KEY`)."""
    return settings.shard_key.strip() or DEFAULT_KEY


def run_id_from_env(env: Mapping[str, str]) -> str | None:
    """``SYNAPSE_RUN_ID`` in ``env``, checked (:func:`check_run_id`)."""
    return check_run_id(env.get(ENV_RUN_ID))


def check_run_id(value: str | None) -> str | None:
    """``SYNAPSE_RUN_ID``: which run this shard belongs to (``None`` when unset).

    In an Indexed Job it is the Job's uid, from the pod label ``batch.kubernetes.io/controller-uid``
    (downward API): every pod and retry of one Job shares it, and the next Job of the same name
    does not. A malformed value (an unsubstituted placeholder, spaces) is invalid input, exit 2.
    """
    raw = (value or "").strip()
    if not raw:
        return None
    if not _RUN_ID_RE.match(raw):
        raise ValidationError(
            f"{ENV_RUN_ID}={raw[:80]!r} is not a run id (letters, digits, '.', '_', ':' or '-', at most 128)",
            details={"errors": [{"loc": ["env", ENV_RUN_ID], "msg": "not a run id", "input": raw[:80]}]},
            hint="set it to the Job's uid: kubectl get job NAME -o jsonpath='{.metadata.uid}' "
            "(an Indexed Job's pods get it from the batch.kubernetes.io/controller-uid label)",
        )
    return raw


def params_digest(params: Any) -> str:
    """SHA-256 of the whole (unsplit) params as canonical JSON: equal for every shard of one run.

    A shard that ran with other params (an edited ConfigMap, a different SYNAPSE_SHARD_KEY list)
    disagrees, and the merge refuses to mix it in.
    """
    text = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def shard_identity(params: Any, settings: "Settings") -> dict[str, Any]:
    """What a shard records about its run beside its slice: ``run_id`` and ``params_sha256``."""
    return {"run_id": check_run_id(settings.run_id), "params_sha256": params_digest(params)}


def clear_shard_dir(path: Path) -> list[str]:
    """Remove what a previous run (or attempt) left in this shard's directory; returns the names removed.

    ``result.json`` goes first, so a shard killed while clearing never leaves an old result beside
    half of its old files. Only the shard's own ``shard-NNNNN-of-NNNNN`` directory is touched.
    """
    if not SHARD_DIR_RE.match(path.name):
        raise ValueError(f"{path} is not a shard directory")
    removed: list[str] = []
    if not path.is_dir():
        return removed
    old = path / "result.json"
    if old.exists() or old.is_symlink():
        old.unlink()
        removed.append(old.name)
    for entry in sorted(path.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
        removed.append(entry.name)
    return removed


def enter_shard_dir(path: Path, spec: ShardSpec, settings: "Settings") -> dict[str, Any]:
    """The shard's start: its directory cleared of any earlier run's files, and the shard info a
    failed run records before its params are even read (index, count, run id)."""
    run_id = check_run_id(settings.run_id)
    clear_shard_dir(path)
    return {"index": spec.index, "count": spec.count, "run_id": run_id}


def split_for_shard(params: Any, spec: ShardSpec, settings: "Settings") -> tuple[dict, dict]:
    """:func:`apply_shard` with ``SYNAPSE_SHARD_KEY``, plus the run's identity (``run_id``, and
    ``params_sha256`` of the whole params, before the split) in the shard info."""
    sharded, info = apply_shard(params, spec, shard_key(settings))
    info.update(shard_identity(params, settings))
    return sharded, info


__all__ = [
    "DEFAULT_KEY",
    "DEFAULT_RESULT_KEY",
    "ENV_COUNT",
    "ENV_INDEX",
    "ENV_K8S_INDEX",
    "ENV_KEY",
    "ENV_RUN_ID",
    "SHARD_DIR_RE",
    "ShardSpec",
    "apply_shard",
    "check_run_id",
    "clear_shard_dir",
    "enter_shard_dir",
    "params_digest",
    "run_id_from_env",
    "shard_from_env",
    "shard_identity",
    "shard_key",
    "shard_range",
    "split_for_shard",
]
