"""PluginEnvironment: the typed view of ``ctx.env``, and the readers for dotenv files and
Kubernetes-projected ConfigMap/Secret directories.

Upstream's API (``from_environ``, ``from_file``, ``merge``, typed getters) is kept as is; the
directory reader is ours, because Kubernetes projects each key as a file behind ``..data``
symlinks that a naive ``os.listdir`` would read twice or not at all.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import ValidationError

#: A quoted value, then nothing or a comment: ``KEY="a # b"  # note``. Double quotes allow escapes.
_QUOTED = {
    '"': re.compile(r'"((?:[^"\\]|\\.)*)"[ \t]*(?:#.*)?', re.DOTALL),
    "'": re.compile(r"'([^']*)'[ \t]*(?:#.*)?", re.DOTALL),
}
#: Where an unquoted value's comment starts: a '#' after whitespace. A '#' inside the value
#: (``http://h/#frag``, ``#ff0000``) is part of it.
_COMMENT = re.compile(r"[ \t]#")


class PluginEnvironment:
    """A read-mostly mapping of configuration values with typed getters."""

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self._data: dict[str, Any] = dict(data or {})

    # -- constructors ---------------------------------------------------------------------

    @classmethod
    def from_environ(cls, prefix: str = "") -> PluginEnvironment:
        """The process environment; with ``prefix``, only keys starting with it, prefix stripped."""
        if not prefix:
            return cls(dict(os.environ))
        n = len(prefix)
        return cls({k[n:]: v for k, v in os.environ.items() if k.startswith(prefix)})

    @classmethod
    def from_file(cls, path: str | Path) -> PluginEnvironment:
        """A dotenv file (``KEY=value``, ``export KEY=value``, quotes, ``#`` comments)."""
        return cls(read_dotenv(path))

    @classmethod
    def merge(cls, *envs: PluginEnvironment | Mapping[str, Any]) -> PluginEnvironment:
        """Later environments win, key by key."""
        data: dict[str, Any] = {}
        for env in envs:
            data.update(env.to_dict() if isinstance(env, PluginEnvironment) else env)
        return cls(data)

    # -- access -------------------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def get_str(self, key: str, default: str | None = None) -> str | None:
        value = self._data.get(key)
        return default if value is None else str(value)

    def get_int(self, key: str, default: int | None = None) -> int | None:
        value = self._data.get(key)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ValueError(f"env {key}={value!r} is not an integer") from None

    def get_float(self, key: str, default: float | None = None) -> float | None:
        value = self._data.get(key)
        if value is None or value == "":
            return default
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"env {key}={value!r} is not a number") from None

    def get_bool(self, key: str, default: bool | None = None) -> bool | None:
        value = self._data.get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        from ..contract.knobs import parse_bool

        parsed = parse_bool(str(value)) if str(value).strip() else False
        if parsed is not None:
            return parsed
        raise ValueError(f"env {key}={value!r} is not a boolean (use true/false, 1/0, yes/no)")

    def get_list(self, key: str, default: list[str] | None = None, sep: str = ",") -> list[str] | None:
        value = self._data.get(key)
        if value is None:
            return default
        if isinstance(value, (list, tuple)):
            return [str(v) for v in value]
        return [part.strip() for part in str(value).split(sep) if part.strip()]

    def to_dict(self) -> dict[str, Any]:
        return dict(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = value

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def keys(self):  # noqa: ANN201 - mapping protocol
        return self._data.keys()

    def items(self):  # noqa: ANN201 - mapping protocol
        return self._data.items()

    def __repr__(self) -> str:
        # Never print values: ctx.env holds credentials.
        return f"PluginEnvironment(keys={sorted(self._data)})"


def read_dotenv(path: str | Path) -> dict[str, str]:
    """Parse a dotenv file; errors name the file and line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValidationError(f"env file {p} does not exist", hint="check SYNAPSE_ENV_FILE") from None
    except UnicodeDecodeError:
        raise ValidationError(f"env file {p} is not UTF-8 text", hint="save it as UTF-8") from None
    except OSError as e:
        raise ValidationError(f"env file {p} cannot be read: {e.strerror}") from None
    data: dict[str, str] = {}
    # Lines end at "\n" (or "\r\n") only: str.splitlines() also splits at form feeds, U+0085, U+2028
    # and friends, which cut a quoted value in two (found by tests/unit/test_properties.py).
    for lineno, raw in enumerate(text.split("\n"), 1):
        raw = raw.removesuffix("\r")
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key or not key.replace("_", "a").replace(".", "a").replace("-", "a").isalnum():
            raise ValidationError(
                f"env file {p}, line {lineno}: expected KEY=value",
                details={"file": str(p), "line": lineno},
                hint="one KEY=value per line; '#' starts a comment",
            )
        stripped = value.strip()
        quoted = _QUOTED.get(stripped[:1])
        match = quoted.fullmatch(stripped) if quoted is not None else None
        if match is not None:
            value = _unescape(match.group(1)) if stripped[0] == '"' else match.group(1)
        elif len(stripped) >= 2 and stripped[0] == stripped[-1] and stripped[0] in "\"'":
            value = stripped[1:-1]
            if stripped[0] == '"':
                value = _unescape(value)
        else:
            value = _COMMENT.split(value, maxsplit=1)[0].strip()
        data[key] = value
    return data


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def _unescape(value: str) -> str:
    r"""Backslash escapes (``\n \t \r \" \\``) of a double-quoted dotenv value, in one left-to-right
    pass, so that ``"C:\\new"`` is ``C:\new`` and not ``C:`` + newline + ``ew``; unknown escapes stay as written."""
    import re

    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), value, flags=re.DOTALL)


def read_env_dir(path: str | Path) -> dict[str, str]:
    """Read a directory of one-file-per-key, as Kubernetes projects a ConfigMap or Secret.

    Hidden entries (``..data``, ``..2024_01_01...``) are the atomic-update machinery: skip them
    and follow the visible symlinks, which point through ``..data`` to the current version.
    """
    p = Path(path)
    data: dict[str, str] = {}
    try:
        entries = sorted(os.scandir(p), key=lambda e: e.name)
    except FileNotFoundError:
        return data
    except NotADirectoryError:
        raise ValidationError(f"env directory {p} is not a directory", hint="check SYNAPSE_ENV_DIR") from None
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            if not entry.is_file():  # follows symlinks; directories are skipped
                continue
            raw = Path(entry.path).read_bytes()
        except OSError:
            continue
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError(
                f"env directory {p}: key {entry.name} is not UTF-8 text",
                details={"dir": str(p), "key": entry.name},
            ) from None
        data[entry.name] = value[:-1] if value.endswith("\n") and value.count("\n") == 1 else value
    return data


__all__ = ["PluginEnvironment", "read_dotenv", "read_env_dir"]
