"""Turning whatever an action returns or logs into JSON, never failing a run over a type.

Upstream fails a successful run when its result holds a ``Path`` or a ``datetime``; we encode
them.  ``default`` is the hook for ``json`` encoders; ``to_jsonable`` is for whole values (results).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import enum
import json
import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any


def default(obj: Any) -> Any:
    """``json`` ``default=`` hook: the common non-JSON types, then a readable fallback."""
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, (_dt.datetime, _dt.date, _dt.time)):
        return obj.isoformat()
    if isinstance(obj, _dt.timedelta):
        return obj.total_seconds()
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(obj)).decode("ascii")
    dump = getattr(obj, "model_dump", None)  # pydantic v2 models
    if callable(dump):
        return dump(mode="json")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    tolist = getattr(obj, "tolist", None)  # numpy arrays and scalars, torch tensors
    if callable(tolist):
        return tolist()
    item = getattr(obj, "item", None)
    if callable(item):
        return item()
    if hasattr(obj, "__fspath__"):
        return obj.__fspath__()
    return repr(obj)


def finite(obj: Any) -> Any:
    """NaN and infinities are not JSON: they become null (a NaN loss must not break the stream)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


_fast = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=default, allow_nan=False).encode
_fast_ascii = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), default=default, allow_nan=False).encode


def dumps(obj: Any) -> str:
    """Compact JSON; non-finite floats become null; unknown types go through ``default``."""
    try:
        return _fast(obj)
    except ValueError:
        return _fast(finite(json.loads(json.dumps(obj, default=default))))


def dumps_ascii(obj: Any) -> str:
    """As ``dumps``, but pure ASCII: event lines must survive any reader's idea of a line break
    (Python's ``splitlines`` also splits on U+2028, U+2029 and U+0085)."""
    try:
        return _fast_ascii(obj)
    except ValueError:
        return _fast_ascii(finite(json.loads(json.dumps(obj, default=default))))


def to_jsonable(obj: Any) -> Any:
    """A plain JSON value (dicts, lists, str, numbers, bool, None) equal to what ``dumps`` writes."""
    return json.loads(dumps(obj))


__all__ = ["default", "dumps", "dumps_ascii", "finite", "to_jsonable"]
