"""The run's settings: every ``SYNAPSE_*`` knob, typed, in one frozen object built once.

Why one object: knobs used to be read where they were used, each module with its own copy of the
default. Two copies of a default drift: storage's code passed the measured values (2048 MiB/s,
0.05 s, 256 KiB) while the knob table said 200 MiB/s, 1 s and 1 MiB, and the table won, so a
clean environment ran with values nobody had measured. Now :data:`knobs.KNOBS` is the only place
that states a name, type, default and what is allowed; this module turns it into a
:class:`Settings` (one attribute per knob: ``SYNAPSE_S3_SPLIT_BELOW_MIBS`` is
``settings.s3_split_below_mibs``), and the consumers (storage, outputs, sharding, the backend
wiring, the pytest helpers) take that object instead of reading the environment.

Sources, highest precedence first (docs/contract.md, "Inputs"): the process environment overlaid
by the env files and directories (``inputs.collect_env`` merges those), then ``config.yaml``'s
``env:``, then the table's defaults. The runner builds the object from the merged environment
before anything runs (a bad value is exit 2, naming the variable) and builds the final one once
``config.yaml``'s ``env:`` is known. Code called outside a run (``storage.fetch`` from a
notebook, the pytest plugin) builds it from the process environment with :func:`from_process`.
This is the only module that reads ``os.environ`` for a knob.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

from ..errors import ValidationError
from .knobs import KNOBS, parse

_PREFIX = "SYNAPSE_"


def attribute(name: str) -> str:
    """The :class:`Settings` attribute of knob ``name``: ``SYNAPSE_S3_CHUNK_SIZE`` -> ``s3_chunk_size``."""
    return name.removeprefix(_PREFIX).lower()


def knob_name(attr: str) -> str:
    """The knob behind attribute ``attr`` (the inverse of :func:`attribute`)."""
    return _PREFIX + attr.upper()


#: Knobs whose values must never show in a repr or a log line.
_SECRET = frozenset({"SYNAPSE_ACCESS_TOKEN", "SYNAPSE_PLUGIN_RUN_USER_TOKEN"})


class Settings:
    """Every knob's typed value for one run; immutable.

    The attributes are declared here with their Python types (the table in knobs.py has the
    defaults; ``tests/unit/test_settings.py`` checks that the two name the same knobs and agree on
    types). A plain class with ``__slots__`` rather than a dataclass: it is built on every run, its
    repr must not show tokens, and it costs nothing at import.
    """

    # -- inputs (docs/contract.md) --
    plugin_dir: str | None
    action: str | None
    action_entrypoint: str | None
    action_params: str | None
    action_params_file: str | None
    env_file: str | None
    env_dir: str | None
    secret_dir: str | None
    job_id: str | None
    checkpoint: str | None
    checkpoint_category: str
    checkpoint_sha256: str | None
    checkpoint_extract: bool
    output_dir: str | None
    output_uri: str | None
    language: str | None
    # -- run behaviour --
    progress_interval: float
    child_grace: float
    gpu_probe: bool
    termination_log: str | None
    # -- sharding (values checked by sharding.py, with its own messages) --
    shard_index: str | None
    shard_count: str | None
    shard_key: str
    run_id: str | None
    upload_timeout: float
    cancel_upload_timeout: float
    # -- backend (docs/backend.md) --
    host: str | None
    access_token: str | None
    plugin_run_user_token: str | None
    plugin_run_tenant: str | None
    plugin_run_url_host: str | None
    models_file: str | None
    report_job: bool
    # -- storage (docs/storage.md) --
    cache_dir: str | None
    cache_max_bytes: int | None
    cache_stale_seconds: float
    s3_strategy: str
    s3_concurrency: int
    s3_part_size: int
    s3_split_below_mibs: float
    s3_split_after: float
    s3_chunk_size: int
    s3_connect_timeout: float
    s3_read_timeout: float
    s3_fast_path: bool
    fetch_retries: int
    fetch_backoff: float
    fetch_backoff_max: float
    verify_etag: bool
    writeback_bytes: int
    direct_io: bool
    extract_max_bytes: int
    extract_max_files: int
    extract_max_ratio: float
    cache_lock_timeout: float
    # -- serving (docs/serving.md) --
    serve_host: str
    serve_port: int
    serve_route_prefix: str | None
    serve_drain: float
    serve_max_ongoing_requests: int | None
    serve_max_models: int | None
    serve_max_body: int
    serve_metrics_interval: float
    plugin_release_checksum: str | None
    plugin_release_code: str | None
    plugin_run_host: str | None
    # -- the pytest plugin --
    test_image: str

    __slots__ = tuple(attribute(name) for name in KNOBS)

    def __init__(self, values: Mapping[str, Any]) -> None:
        """``values``: attribute -> typed value, one per knob (what :func:`build` makes)."""
        missing = set(self.__slots__) - set(values)
        extra = set(values) - set(self.__slots__)
        if missing or extra:
            raise TypeError(f"Settings needs exactly the knobs' values (missing {sorted(missing)}, unknown {sorted(extra)})")
        for attr, value in values.items():
            object.__setattr__(self, attr, value)

    def __setattr__(self, attr: str, value: Any) -> None:
        raise AttributeError(f"Settings are frozen: build new ones (settings.build) to change {attr}")

    def __delattr__(self, attr: str) -> None:
        raise AttributeError("Settings are frozen")

    def items(self) -> Iterator[tuple[str, Any]]:
        """(knob name, typed value) for every knob, in the table's order."""
        for attr in self.__slots__:
            yield knob_name(attr), getattr(self, attr)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Settings) and dict(self.items()) == dict(other.items())

    __hash__ = None  # type: ignore[assignment]  # values may be unhashable in principle; equality is by value

    def __repr__(self) -> str:
        changed = [f"{attribute(name)}={'***' if name in _SECRET else value!r}"
                   for name, value in self.items() if value != KNOBS[name].default]
        return f"Settings({', '.join(changed)})"


def build(env: Mapping[str, str], *, strict: bool = True) -> Settings:
    """The settings ``env`` gives (missing and empty knobs: the table's defaults).

    ``strict``: the first bad value (in table order, so always the same one) raises a
    ``ValidationError`` that names the variable, its value and what is allowed (exit 2). Not
    strict: a bad value counts as unset; that is how a run whose error is a bad knob still gets
    an output directory, an ``end`` and a termination message.
    """
    values: dict[str, Any] = {}
    for name, knob in KNOBS.items():
        raw = env.get(name)
        if raw is None:
            value = knob.default
        else:
            try:
                value = parse(knob, raw)
            except ValidationError:
                if strict:
                    raise
                value = knob.default
        values[attribute(name)] = value
    return Settings(values)


def defaults() -> Settings:
    """The settings of a clean environment: every knob at the table's default."""
    return build({})


def from_process(*, strict: bool = True) -> Settings:
    """The settings of this process's environment, read now: for code called outside a run."""
    return build(os.environ, strict=strict)


__all__ = ["Settings", "attribute", "build", "defaults", "from_process", "knob_name"]
