"""File and directory names derived from outside input, made safe to join to a directory.

A checkpoint URL or object key chooses the name its file gets in the cache (loaders often dispatch
on the name, so it is kept when harmless).  Whatever the input, the result of :func:`safe_name` is
one path component that stays inside the directory it is joined to: no ``/``, ``\\``, NUL or other
control character, never ``.``, ``..`` or empty, at most :data:`MAX_NAME_BYTES` bytes of UTF-8, and
never a name the cache uses itself inside an entry (``meta.json``, ``.meta.*``).
"""

from __future__ import annotations

import hashlib
import re

#: well below NAME_MAX (255 bytes on Linux filesystems): room for suffixes added later (``.d``)
MAX_NAME_BYTES = 200
#: names the cache writes next to the entry's file (objects/<key>/meta.json and its temp copies)
_RESERVED = re.compile(r"^(meta\.json|\.meta\..*)$", re.IGNORECASE | re.DOTALL)
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")
_SUFFIX = re.compile(r"(\.[A-Za-z0-9_-]{1,16}){1,2}$")


def _has_surrogate(name: str) -> bool:
    """Lone surrogates (possible in a str, not in a file name) cannot be encoded as UTF-8."""
    return any("\ud800" <= ch <= "\udfff" for ch in name)


def safe_name(name: str, fallback: str = "object") -> str:
    """``name`` as a single, harmless path component (``fallback`` when nothing usable is left).

    Separators and control characters become ``_``; ``.``/``..``/empty/all-dots become ``fallback``;
    reserved cache names get a ``_`` prefix; an overlong name keeps its start and its suffix
    (``.safetensors``, ``.tar.gz``) around a short hash of the whole, so it stays recognizable
    and distinct.
    """
    if _has_surrogate(name):
        name = "".join("_" if "\ud800" <= ch <= "\udfff" else ch for ch in name)
    name = _UNSAFE.sub("_", name)
    if name.strip(".") == "" or name.strip() == "":
        name = fallback
    if _RESERVED.match(name):
        name = "_" + name
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        name = _shorten(name)
    return name


def _shorten(name: str) -> str:
    m = _SUFFIX.search(name)
    suffix = m.group(0) if m and m.start() > 0 else ""
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:12]
    budget = MAX_NAME_BYTES - len(suffix) - len(digest) - 1
    head = name[: len(name) - len(suffix)].encode("utf-8")[:budget].decode("utf-8", "ignore")
    return f"{head}~{digest}{suffix}"
