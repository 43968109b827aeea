"""Fetching checkpoints and uploading outputs: S3 (and compatible), presigned HTTP(S) URLs, local paths.

This module is imported by every run, so it imports nothing heavy: boto3 is loaded inside the
functions that talk to S3, and the implementation modules only when ``fetch``/``upload_dir`` run.
See docs/storage.md for URIs, environment knobs, the cache layout and the error messages.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .progress import ProgressFn
from .result import FetchResult

if TYPE_CHECKING:
    from ..contract.settings import Settings



def fetch(uri: str, *, cache_dir: str | os.PathLike[str] | None = None, extract: bool = False,
          sha256: str | None = None, progress: ProgressFn | None = None,
          dest: str | os.PathLike[str] | None = None, settings: "Settings | None" = None) -> FetchResult:
    """Make ``uri`` available locally, verified, and return where it is.

    ``uri``: ``s3://bucket/key``, ``s3://bucket/prefix/`` (a directory), ``https://``/``http://``
    (presigned URLs), ``file://`` or a plain path (used in place, never copied unless ``dest``).
    ``extract``: unpack a .zip/.tar/.tar.gz/.tgz safely and return the directory.
    ``sha256``: expected digest of the object (the archive, when extracting).
    ``dest``: also materialize the result there (atomic copy) and return that path.
    ``settings``: the run's settings (the runner hands its own down); None: the process's, read now.
    Raises StorageError (exit 4) and its subclasses ArchiveError and ChecksumMismatchError.
    """
    from .fetcher import fetch as _fetch

    return _fetch(uri, cache_dir=cache_dir, extract=extract, sha256=sha256, progress=progress, dest=dest,
                  settings=settings)


def upload_dir(local_dir: str | os.PathLike[str], uri: str, *, progress: ProgressFn | None = None,
               settings: "Settings | None" = None) -> int:
    """Upload every file below ``local_dir`` to ``s3://bucket/prefix/`` (multipart for big files).

    ``settings``: as for :func:`fetch`. Returns the bytes uploaded.  Raises StorageError naming the URI, endpoint and cause.
    """
    from .upload import upload_dir as _upload

    return _upload(local_dir, uri, progress=progress, settings=settings)


__all__ = ["FetchResult", "ProgressFn", "fetch", "upload_dir"]
