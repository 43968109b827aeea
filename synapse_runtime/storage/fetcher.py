"""``fetch``: a URI to a verified local path, through the cache; this module only dispatches.

A local path is used in place; an S3 object or a presigned URL goes through its source
(``sources.py``) and the common object path (``objects.py``); an S3 prefix through ``prefix.py``.
``dest`` then materializes the result where the caller wants it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import StorageError, ValidationError
from .cache import Cache, entry_key, tree_size
from .config import StorageSettings
from .diagnose import checksum_error
from .local import check_local, materialize
from .objects import ensure_extracted, sha256_file
from .progress import ProgressFn
from .result import FetchResult
from .uri import ParsedURI, parse, redact

if TYPE_CHECKING:
    from ..contract.settings import Settings

_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


def fetch(uri: str, *, cache_dir: str | os.PathLike[str] | None = None, extract: bool = False,
          sha256: str | None = None, progress: ProgressFn | None = None,
          dest: str | os.PathLike[str] | None = None, settings: "Settings | None" = None) -> FetchResult:
    if sha256 is not None:
        sha256 = sha256.strip().lower().removeprefix("sha256:")
        if not _SHA256.match(sha256):
            raise ValidationError(f"sha256 must be 64 hex digits, got {sha256[:80]!r}",
                                  hint="give the checkpoint's SHA-256 as printed by `sha256sum` "
                                       "(SYNAPSE_CHECKPOINT_SHA256), optionally prefixed with 'sha256:'",
                                  details={"uri": redact(uri), "field": "sha256"})
    storage = StorageSettings.of(settings)
    parsed = parse(uri)
    from .prefix import fetch_prefix
    from .sources import fetch_http, fetch_s3_object

    if parsed.scheme == "file":
        result = _fetch_local(parsed, storage, cache_dir, extract, sha256, progress)
    else:
        cache = Cache.open(cache_dir, storage)
        if parsed.scheme == "s3" and parsed.is_prefix:
            result = fetch_prefix(parsed, storage, cache, progress)
        elif parsed.scheme == "s3":
            result = fetch_s3_object(parsed, storage, cache, extract, sha256, progress)
        else:
            result = fetch_http(parsed, storage, cache, extract, sha256, progress)
    if dest is not None:
        try:
            final = materialize(result.path, Path(dest))
        except OSError as exc:
            raise StorageError(f"cannot copy {redact(uri)} to {dest}: {exc.strerror or exc}",
                               hint="check that the destination is writable and has space",
                               details={"uri": redact(uri), "cause": "disk"}) from exc
        result = FetchResult(path=final, uri=result.uri, bytes=result.bytes, total=result.total, cached=result.cached, via=result.via)
    return result


def _fetch_local(parsed: ParsedURI, settings: StorageSettings, cache_dir: Any, extract: bool, sha256: str | None,
                 progress: ProgressFn | None) -> FetchResult:
    assert parsed.path is not None
    path = check_local(parsed.path, parsed.raw)
    if sha256 is not None:
        if not path.is_file():
            raise ValidationError(f"sha256 given for {parsed.raw}, which is a directory")
        actual = sha256_file(path)
        if actual != sha256:
            raise checksum_error(parsed.raw, "local", "sha256", sha256, actual)
    size = tree_size(path)
    if extract:
        cache = Cache.open(cache_dir, settings)
        stat = path.stat()
        key = entry_key(kind="local", path=str(path.resolve()), size=stat.st_size, mtime=stat.st_mtime_ns, ino=stat.st_ino)
        meta = ensure_extracted(cache, settings, key, path, parsed, sha256)
        result = FetchResult(Path(meta["path"]), redact(parsed.raw), 0, int(meta["bytes"]), True, "local")
    else:
        result = FetchResult(path, parsed.raw, 0, size, True, "local")
    if progress:
        progress(parsed.raw, result.total or 0, result.total, True)
    return result
