"""Every ``SYNAPSE_*`` environment knob, in one table, read one way.

Why one place: knobs used to be parsed where they were used, three different ways (a bad value
silently became the default, crashed with a bare traceback, or raised), and booleans were parsed
four times with four vocabularies. Worse, some were read after output capture had started or after
the action had finished, so ``SYNAPSE_PROGRESS_INTERVAL=abc`` ended a run with no event and no
``result.json``. Here each knob has a type, a default and what is allowed; :func:`validate` checks
them all before anything runs, so a bad value is exit 2 with an ``error`` event that names the
variable, its value and what is allowed. Code reads knobs afterwards through one typed, frozen
object built from this table (:mod:`synapse_runtime.contract.settings`): this table is the only place that
states a default. The docs' knob tables are checked against :data:`KNOBS` by
``tests/unit/test_knobs.py`` in both directions (every knob documented, every documented
``SYNAPSE_*`` variable read), and their default columns by ``tests/unit/test_settings.py``.

Empty values count as unset (an empty ``-e SYNAPSE_X=`` is the usual way to "unset" in compose
files and manifests), except for lists of directories (``paths``), where empty means "none" (so
``SYNAPSE_ENV_DIR=`` turns the default directory off).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..errors import ValidationError

MiB = 1024 * 1024
GiB = 1024 * MiB

#: The boolean vocabulary, the only one (``PluginEnvironment.get_bool`` uses it too).
TRUE_WORDS = frozenset({"1", "true", "yes", "on", "y", "t"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", "n", "f"})
_UNITS = {"k": 1024, "m": MiB, "g": GiB, "t": 1024 * GiB}


class Knob:
    """One variable: its kind (``text``, ``path``, ``paths``, ``bool``, ``int``, ``float``, ``size``,
    ``choice``), its default (after parsing), its lower bound, its choices, and one line for humans."""

    __slots__ = ("name", "kind", "default", "minimum", "choices", "doc")

    def __init__(self, name: str, kind: str, default: Any = None, doc: str = "", *,
                 minimum: float | None = None, choices: tuple[str, ...] = ()) -> None:
        self.name, self.kind, self.default, self.doc = name, kind, default, doc
        self.minimum, self.choices = minimum, choices

    @property
    def allowed(self) -> str:
        """What a valid value looks like, in words (for error messages and docs)."""
        low = "" if self.minimum is None else f" >= {self.minimum:g}"
        return {
            "bool": "a boolean: 1/0, true/false, yes/no, on/off",
            "int": f"an integer{low}",
            "float": f"a number{low}",
            "size": f"a byte count{low}, optionally with a K/M/G/T suffix (e.g. 16M)",
            "choice": "one of " + ", ".join(self.choices),
            "path": "a path",
            "paths": "paths separated by ':'",
        }.get(self.kind, "any text")


def _k(name: str, kind: str, default: Any = None, doc: str = "", **kw: Any) -> tuple[str, Knob]:
    return name, Knob(name, kind, default, doc, **kw)


#: Every knob the runtime reads. Validated (typed kinds) before a run starts.
KNOBS: dict[str, Knob] = dict([
    # -- inputs (docs/contract.md) -------------------------------------------------------------
    _k("SYNAPSE_PLUGIN_DIR", "path", None, "the plugin directory"),
    _k("SYNAPSE_ACTION", "text", None, "the action's name in config.yaml"),
    _k("SYNAPSE_ACTION_ENTRYPOINT", "text", None, "module:Class of the action"),
    _k("SYNAPSE_ACTION_PARAMS", "text", None, "params as JSON"),
    _k("SYNAPSE_ACTION_PARAMS_FILE", "path", None, "params file (JSON or YAML)"),
    _k("SYNAPSE_ENV_FILE", "paths", None, "dotenv files, ':'-separated"),
    _k("SYNAPSE_ENV_DIR", "paths", "/mnt/synapse/env", "ConfigMap-style directories"),
    _k("SYNAPSE_SECRET_DIR", "paths", "/mnt/synapse/secrets", "Secret-style directories (all values secret)"),
    _k("SYNAPSE_JOB_ID", "text", None, "the job id in events and for job reporting"),
    _k("SYNAPSE_CHECKPOINT", "text", None, "checkpoint URI"),
    _k("SYNAPSE_CHECKPOINT_CATEGORY", "text", "base", "ctx.checkpoint['category']"),
    _k("SYNAPSE_CHECKPOINT_SHA256", "text", None, "expected sha256 of the checkpoint (checked by storage)"),
    _k("SYNAPSE_CHECKPOINT_EXTRACT", "bool", False, "unpack the checkpoint archive"),
    _k("SYNAPSE_OUTPUT_DIR", "path", None, "the output directory"),
    _k("SYNAPSE_OUTPUT_URI", "text", None, "upload the output directory there after the action"),
    _k("SYNAPSE_LANGUAGE", "text", None, "the language plugins should answer in (ctx.language)"),
    # -- run behaviour (docs/contract.md, tuning) ---------------------------------------------
    _k("SYNAPSE_PROGRESS_INTERVAL", "float", 0.2, "seconds between progress lines per category", minimum=0),
    _k("SYNAPSE_CHILD_GRACE", "float", 2.0, "seconds between SIGTERM and SIGKILL for leftover processes", minimum=0),
    _k("SYNAPSE_GPU_PROBE", "bool", True, "probe for GPUs at start"),
    _k("SYNAPSE_TERMINATION_LOG", "path", None, "where the termination message goes (unset: /dev/termination-log where it exists)"),
    # -- sharding (docs/kubernetes.md; values validated by sharding.py with its own messages) ---
    _k("SYNAPSE_SHARD_INDEX", "text", None, "this shard's index"),
    _k("SYNAPSE_SHARD_COUNT", "text", None, "the number of shards"),
    _k("SYNAPSE_SHARD_KEY", "text", "inputs", "the params key whose list is split"),
    _k("SYNAPSE_RUN_ID", "text", None, "the run a shard belongs to (a Job's uid); merge refuses other runs"),
    _k("SYNAPSE_UPLOAD_TIMEOUT", "float", 3600.0, "seconds the output upload may take; then exit 4", minimum=0.001),
    _k("SYNAPSE_CANCEL_UPLOAD_TIMEOUT", "float", 60.0,
       "seconds the output upload may take after a SIGTERM (under the pod's grace period)", minimum=0.001),
    # -- backend (docs/backend.md) ---------------------------------------------------------------
    _k("SYNAPSE_HOST", "text", None, "backend base URL"),
    _k("SYNAPSE_ACCESS_TOKEN", "text", None, "backend access token"),
    _k("SYNAPSE_PLUGIN_RUN_USER_TOKEN", "text", None, "plugin-run user token"),
    _k("SYNAPSE_PLUGIN_RUN_TENANT", "text", None, "tenant code"),
    _k("SYNAPSE_PLUGIN_RUN_URL_HOST", "text", None, "url_host query parameter"),
    _k("SYNAPSE_MODELS_FILE", "path", None, "offline model registry"),
    _k("SYNAPSE_REPORT_JOB", "bool", True, "report job status to the backend"),
    # -- storage (docs/storage.md) ---------------------------------------------------------------
    _k("SYNAPSE_CACHE_DIR", "path", None, "cache root"),
    _k("SYNAPSE_CACHE_MAX_BYTES", "size", None, "LRU bound of the cache (unset: half the filesystem, at most 256G)", minimum=0),
    _k("SYNAPSE_CACHE_STALE_SECONDS", "float", 3600.0, "age after which unlocked temp items are removed", minimum=0),
    _k("SYNAPSE_S3_STRATEGY", "choice", "auto", "download strategy", choices=("auto", "single", "parallel")),
    _k("SYNAPSE_S3_CONCURRENCY", "int", 8, "parallel ranges / objects / upload threads", minimum=1),
    _k("SYNAPSE_S3_PART_SIZE", "size", 16 * MiB, "range and multipart part size", minimum=64 * 1024),
    _k("SYNAPSE_S3_SPLIT_BELOW_MIBS", "float", 2048.0, "auto: split a stream slower than this (MiB/s)", minimum=0),
    _k("SYNAPSE_S3_SPLIT_AFTER", "float", 0.05, "auto: seconds before judging the rate", minimum=0),
    _k("SYNAPSE_S3_CHUNK_SIZE", "size", 256 * 1024, "bytes per socket read/write", minimum=4096),
    _k("SYNAPSE_S3_CONNECT_TIMEOUT", "float", 10.0, "seconds", minimum=0.05),
    _k("SYNAPSE_S3_READ_TIMEOUT", "float", 60.0, "seconds", minimum=0.05),
    _k("SYNAPSE_S3_FAST_PATH", "bool", True, "sign S3 requests ourselves (0: everything through boto3)"),
    _k("SYNAPSE_FETCH_RETRIES", "int", 5, "retries per request after the first try", minimum=0),
    _k("SYNAPSE_FETCH_BACKOFF", "float", 0.5, "backoff base, seconds", minimum=0),
    _k("SYNAPSE_FETCH_BACKOFF_MAX", "float", 20.0, "backoff cap, seconds", minimum=0),
    _k("SYNAPSE_VERIFY_ETAG", "bool", True, "verify against the server's digest"),
    _k("SYNAPSE_WRITEBACK_BYTES", "size", 32 * MiB, "fdatasync every this many bytes", minimum=1 * MiB),
    _k("SYNAPSE_DIRECT_IO", "bool", True, "write downloads with O_DIRECT where the filesystem allows"),
    _k("SYNAPSE_EXTRACT_MAX_BYTES", "size", 200 * GiB, "archive bomb limit: bytes written", minimum=0),
    _k("SYNAPSE_EXTRACT_MAX_FILES", "int", 1_000_000, "archive bomb limit: entries", minimum=0),
    _k("SYNAPSE_EXTRACT_MAX_RATIO", "float", 100.0, "archive bomb limit: expanded/compressed size (0: off)", minimum=0),
    _k("SYNAPSE_CACHE_LOCK_TIMEOUT", "float", 300.0,
       "seconds to wait for a cache lock whose holder shows no sign of life (0: forever); then exit 4", minimum=0),
    # -- serving (docs/serving.md) ---------------------------------------------------------------
    _k("SYNAPSE_SERVE_HOST", "text", "0.0.0.0", "address `serve` listens on"),
    _k("SYNAPSE_SERVE_PORT", "int", 8100, "port `serve` listens on (upstream's 8100; 0: any free port)", minimum=0),
    _k("SYNAPSE_SERVE_ROUTE_PREFIX", "text", None, "route prefix, instead of upstream's checksum or md5 of code@version"),
    _k("SYNAPSE_PLUGIN_RELEASE_CHECKSUM", "text", None, "upstream's plugin release checksum: the route prefix"),
    _k("SYNAPSE_PLUGIN_RUN_HOST", "text", None, "upstream's backend URL for a serve deployment (before SYNAPSE_HOST): signs model tokens"),
    _k("SYNAPSE_PLUGIN_RELEASE_CODE", "text", None, "upstream's serve app name (code@version) hashed into the prefix"),
    _k("SYNAPSE_SERVE_DRAIN", "float", 30.0, "seconds in-flight requests may take after SIGTERM", minimum=0),
    _k("SYNAPSE_SERVE_MAX_ONGOING_REQUESTS", "int", None,
       "requests served at once; 503 beyond (unset: serve_options.max_ongoing_requests, else 64)", minimum=1),
    _k("SYNAPSE_SERVE_MAX_MODELS", "int", None,
       "models kept loaded, LRU (unset: serve_options.max_num_models_per_replica, else 3)", minimum=1),
    _k("SYNAPSE_SERVE_MAX_BODY", "size", 16 * MiB, "largest request body; 413 beyond", minimum=1),
    _k("SYNAPSE_SERVE_METRICS_INTERVAL", "float", 10.0, "seconds between request-metrics events", minimum=0.05),
    # -- the pytest plugin (README.md, "Test your plugin") ---------------------------------------
    _k("SYNAPSE_TEST_IMAGE", "text", "synapse-runtime:dev", "the image synapse_container runs"),
])


def parse_bool(text: str) -> bool | None:
    """True/False for a word of the one boolean vocabulary, None for anything else."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


def parse_size(text: str) -> float:
    """``16M``, ``16MiB``, ``2g``, ``1e6`` or a plain byte count; ValueError otherwise."""
    r = text.strip().lower().removesuffix("ib").removesuffix("b")
    if r and r[-1] in _UNITS:
        return float(r[:-1]) * _UNITS[r[-1]]
    return float(r)


def _bad(knob: Knob, raw: str) -> ValidationError:
    return ValidationError(
        f"{knob.name}={raw!r} is not valid: expected {knob.allowed}",
        details={"variable": knob.name, "value": raw, "allowed": knob.allowed},
        hint=f"fix or unset {knob.name} (unset means the default, {knob.default!r})",
    )


def parse(knob: Knob, raw: str) -> Any:
    """The typed value of ``raw`` for ``knob``; a ValidationError naming variable, value and what is allowed."""
    text = raw.strip()
    kind = knob.kind
    if kind == "paths":
        return raw
    if not text:
        return knob.default
    if kind in ("text", "path"):
        return raw
    if kind == "bool":
        value = parse_bool(text)
        if value is None:
            raise _bad(knob, raw)
        return value
    if kind == "choice":
        if text.lower() not in knob.choices:
            raise _bad(knob, raw)
        return text.lower()
    try:
        number: float = int(text) if kind == "int" else (parse_size(text) if kind == "size" else float(text))
    except (ValueError, OverflowError):
        raise _bad(knob, raw) from None
    if not math.isfinite(number) or (knob.minimum is not None and number < knob.minimum):
        raise _bad(knob, raw)
    return int(number) if kind in ("int", "size") else number


def get(name: str, env: Mapping[str, str]) -> Any:
    """The typed value of knob ``name`` in ``env`` (an environment mapping; whole runs use
    :class:`synapse_runtime.contract.settings.Settings`, built from this table once)."""
    knob = KNOBS[name]
    raw = env.get(name)
    return knob.default if raw is None else parse(knob, raw)


def validate(env: Mapping[str, str]) -> None:
    """Parse every knob present in ``env``; the first bad one raises (in table order, so always the same one)."""
    for name, knob in KNOBS.items():
        raw = env.get(name)
        if raw is not None and knob.kind not in ("text", "path", "paths"):
            parse(knob, raw)


#: The run-behaviour knobs whose table in docs/contract.md ("Knobs") is generated by :func:`markdown_table`.
CONTRACT_TABLE = ("SYNAPSE_PROGRESS_INTERVAL", "SYNAPSE_CHILD_GRACE", "SYNAPSE_GPU_PROBE",
                  "SYNAPSE_CHECKPOINT_EXTRACT", "SYNAPSE_REPORT_JOB", "SYNAPSE_TERMINATION_LOG", "SYNAPSE_LANGUAGE")


def markdown_table(names: tuple[str, ...] = CONTRACT_TABLE) -> str:
    """A docs table of these knobs (variable, default, allowed, meaning), so the docs cannot drift
    from the table (``python -c "from synapse_runtime.contract.knobs import markdown_table as t; print(t())"``)."""
    rows = ["| variable | default | allowed | meaning |", "|---|---|---|---|"]
    for name in names:
        k = KNOBS[name]
        default = "unset" if k.default is None else f"`{int(k.default) if k.kind == 'bool' else k.default}`"
        rows.append(f"| `{name}` | {default} | {k.allowed} | {k.doc} |")
    return "\n".join(rows) + "\n"


__all__ = ["CONTRACT_TABLE", "KNOBS", "Knob", "get", "markdown_table", "parse", "parse_bool", "parse_size", "validate"]
