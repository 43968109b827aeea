"""The contract's inputs and their precedence, in one place (docs/contract.md, "Inputs").

Each ``resolve_*`` function answers one question ("where do params come from?") and returns the
value with the name of the source that won, so errors and docs can say which one it was.
Nothing here runs actions or writes events.
"""

from __future__ import annotations

import json
import os

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import knobs
from ..actions.env import read_dotenv, read_env_dir
from ..errors import ValidationError
from ..events.redact import secret_values

DEFAULT_PLUGIN_DIR = "/plugin"
DEFAULT_PARAMS_FILES = ("/mnt/synapse/params.json", "/mnt/synapse/params.yaml", "/mnt/synapse/params.yml")
DEFAULT_OUTPUT_DIR = "/mnt/output"
LOCAL_OUTPUT_DIR = "synapse-output"
MAX_PARAMS_BYTES = 64 * 1024 * 1024


class Sourced:
    """A value and the name of the source it came from (``--params``, ``SYNAPSE_ACTION_PARAMS``...)."""

    __slots__ = ("source", "value")

    def __init__(self, value: Any, source: str) -> None:
        self.value, self.source = value, source

    def __repr__(self) -> str:
        return f"Sourced({self.value!r}, {self.source!r})"


class Environment:
    """``ctx.env``'s data and what must be redacted from every output."""

    def __init__(self, data: dict[str, str], overlay: dict[str, str] | None = None,
                 secrets: set[str] | None = None, files: list[str] | None = None) -> None:
        self.data = data
        self.overlay = overlay or {}
        self.secrets = secrets or set()
        self.files = files or []


def _split_paths(value: str | None) -> list[str]:
    return [p for p in (value or "").split(":") if p]


def collect_env(environ: Mapping[str, str]) -> Environment:
    """Process env, overlaid by each dotenv file of ``SYNAPSE_ENV_FILE`` and directory of
    ``SYNAPSE_ENV_DIR``, then ``SYNAPSE_SECRET_DIR`` (every value of which is a secret)."""
    overlay: dict[str, str] = {}
    files: list[str] = []
    from_secret_volume: set[str] = set()
    for path in _split_paths(knobs.get("SYNAPSE_ENV_FILE", environ)):
        overlay.update(read_dotenv(path))
        files.append(path)
    for path in _split_paths(knobs.get("SYNAPSE_ENV_DIR", environ)):
        overlay.update(read_env_dir(path))
        files.append(path)
    for path in _split_paths(knobs.get("SYNAPSE_SECRET_DIR", environ)):
        values = read_env_dir(path)
        overlay.update(values)
        from_secret_volume.update(values.values())
        if values:
            files.append(path)
    data = {**environ, **overlay}
    return Environment(data=data, overlay=overlay, secrets=secret_values(data, from_secret_volume), files=files)


def add_plugin_env(data: dict[str, str], defaults: Mapping[str, Any], *, export: bool) -> None:
    """config.yaml's ``env:``: the lowest-precedence source, under every value already in ``data``.

    ``export`` puts them in ``os.environ`` too (a run or a server owns its process, and boto3 and
    subprocesses read the environment); ``run_plugin`` leaves its host process's environment alone."""
    for key, value in defaults.items():
        if key not in data:
            data[key] = str(value)
            if export:
                os.environ.setdefault(key, str(value))


def resolve_job_id(env: Mapping[str, str]) -> Sourced:
    if knobs.get("SYNAPSE_JOB_ID", env):
        return Sourced(env["SYNAPSE_JOB_ID"], "SYNAPSE_JOB_ID")
    if env.get("RAY_JOB_ID"):
        return Sourced(env["RAY_JOB_ID"], "RAY_JOB_ID")
    return Sourced(os.uname().nodename, "hostname")


def resolve_plugin_dir(option: str | None, env: Mapping[str, str]) -> Sourced:
    if option:
        return Sourced(Path(option), "--plugin")
    if knobs.get("SYNAPSE_PLUGIN_DIR", env):
        return Sourced(Path(env["SYNAPSE_PLUGIN_DIR"]), "SYNAPSE_PLUGIN_DIR")
    return Sourced(Path(DEFAULT_PLUGIN_DIR), "default")


def resolve_action_ref(option: str | None, env: Mapping[str, str]) -> tuple[str | None, str | None, str]:
    """(name, entrypoint, source): by name first, then by entrypoint, else the only action."""
    if option:
        if ":" in option or ("." in option and not option.startswith(".")):
            return None, option, "--action"
        return option, None, "--action"
    if knobs.get("SYNAPSE_ACTION", env):
        return env["SYNAPSE_ACTION"], None, "SYNAPSE_ACTION"
    if knobs.get("SYNAPSE_ACTION_ENTRYPOINT", env):
        return None, env["SYNAPSE_ACTION_ENTRYPOINT"], "SYNAPSE_ACTION_ENTRYPOINT"
    return None, None, "only action"


def resolve_output_dir(option: str | None, env: Mapping[str, str]) -> Sourced:
    if option:
        return Sourced(Path(option), "--output")
    if knobs.get("SYNAPSE_OUTPUT_DIR", env):
        return Sourced(Path(env["SYNAPSE_OUTPUT_DIR"]), "SYNAPSE_OUTPUT_DIR")
    if Path(DEFAULT_OUTPUT_DIR).is_dir():
        return Sourced(Path(DEFAULT_OUTPUT_DIR), "default")
    # Outside a container /mnt/output rarely exists: a local directory beats failing a first run.
    return Sourced(Path(LOCAL_OUTPUT_DIR).resolve(), "local default")


def resolve_checkpoint(option: str | None, env: Mapping[str, str]) -> tuple[str | None, str]:
    uri = option or knobs.get("SYNAPSE_CHECKPOINT", env) or None
    return uri, knobs.get("SYNAPSE_CHECKPOINT_CATEGORY", env)


# -- params ---------------------------------------------------------------------------------------


def resolve_params(option: str | None, env: Mapping[str, str]) -> Sourced:
    """The first present source wins whole; none present means ``{}``."""
    if option:
        if option == "-":
            return Sourced(parse_params(_read_stdin(), "stdin"), "stdin")
        return Sourced(parse_params(_read_file(option, "--params"), option), "--params")
    if knobs.get("SYNAPSE_ACTION_PARAMS", env):
        return Sourced(parse_params(env["SYNAPSE_ACTION_PARAMS"].encode(), "SYNAPSE_ACTION_PARAMS", kind="json"), "SYNAPSE_ACTION_PARAMS")
    if knobs.get("SYNAPSE_ACTION_PARAMS_FILE", env):
        path = env["SYNAPSE_ACTION_PARAMS_FILE"]
        return Sourced(parse_params(_read_file(path, "SYNAPSE_ACTION_PARAMS_FILE"), path), "SYNAPSE_ACTION_PARAMS_FILE")
    for path in DEFAULT_PARAMS_FILES:
        if os.path.isfile(path):
            return Sourced(parse_params(_read_file(path, "default params file"), path), path)
    return Sourced({}, "none")


def _read_stdin() -> bytes:
    return sys.stdin.buffer.read(MAX_PARAMS_BYTES + 1)


def _read_file(path: str, source: str) -> bytes:
    p = Path(path)
    try:
        if p.stat().st_size > MAX_PARAMS_BYTES:
            raise ValidationError(
                f"params file {p} is larger than {MAX_PARAMS_BYTES // 1048576} MiB",
                details={"source": source, "file": str(p)},
                hint="pass large inputs by URI (e.g. s3://...) rather than inline in params",
            )
        return p.read_bytes()
    except FileNotFoundError:
        raise ValidationError(
            f"params file {p} (from {source}) does not exist",
            details={"source": source, "file": str(p)},
            hint="check the path; inside a container, mount the file (e.g. -v $PWD/params.json:/mnt/synapse/params.json:ro)",
        ) from None
    except IsADirectoryError:
        raise ValidationError(f"params file {p} (from {source}) is a directory", details={"source": source}) from None
    except PermissionError:
        raise ValidationError(
            f"params file {p} (from {source}) is not readable",
            details={"source": source},
            hint="make it readable by the container's user (uid 10001)",
        ) from None


def parse_params(raw: bytes, where: str, kind: str | None = None) -> dict[str, Any]:
    """JSON or YAML (by extension, else by content) into a mapping; errors say where and what."""
    if len(raw) > MAX_PARAMS_BYTES:
        raise ValidationError(f"params from {where} are larger than {MAX_PARAMS_BYTES // 1048576} MiB", details={"source": where})
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValidationError(
            f"params from {where} are not UTF-8 (invalid byte at offset {e.start})",
            details={"source": where, "offset": e.start},
            hint="save the params file as UTF-8",
        ) from None
    if kind is None:
        lower = where.lower()
        if lower.endswith((".yaml", ".yml")):
            kind = "yaml"
        elif lower.endswith(".json"):
            kind = "json"
        else:
            kind = "json" if text.lstrip()[:1] in ("{", "[", "") else "yaml"
    if not text.strip():
        return {}
    if kind == "json":
        try:
            data = json.loads(text)
        except RecursionError:
            raise ValidationError(
                f"params from {where} are nested too deeply to read",
                details={"source": where},
                hint="flatten the params; pass large structured inputs as a file or URI",
            ) from None
        except json.JSONDecodeError as e:
            raise ValidationError(
                f"params from {where} are not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}",
                details={"source": where, "line": e.lineno, "column": e.colno},
                hint="fix the JSON syntax there (or use a .yaml file for YAML)",
            ) from None
        except ValueError as e:  # an integer over Python's 4300-digit conversion limit
            raise _too_long_number(where, e) from None
    else:
        import yaml

        try:
            data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except ValueError as e:  # YAML's int() of a huge literal: the same limit
            raise _too_long_number(where, e) from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = mark.line + 1 if mark else None
            raise ValidationError(
                f"params from {where} are not valid YAML: {getattr(e, 'problem', None) or e}"
                + (f" at line {line}" if line else ""),
                details={"source": where, "line": line},
                hint="fix the YAML syntax there",
            ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValidationError(
            f"params from {where} must be an object (a mapping of names to values), got {type(data).__name__}",
            details={"source": where},
            hint='wrap the values in an object, e.g. {"epochs": 5}',
        )
    return data


def _too_long_number(where: str, exc: ValueError) -> ValidationError:
    return ValidationError(
        f"params from {where} hold a number too long to read: {exc}",
        details={"source": where},
        hint="pass a number that long as a string, or in a file referenced by the params",
    )


__all__ = [
    "Environment", "Sourced", "collect_env", "parse_params", "resolve_action_ref", "resolve_checkpoint",
    "resolve_job_id", "resolve_output_dir", "resolve_params", "resolve_plugin_dir",
]
