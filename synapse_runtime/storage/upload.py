"""``upload_dir``: a directory to ``s3://bucket/prefix/`` through s3transfer, files in parallel.

s3transfer does multipart above ``SYNAPSE_S3_PART_SIZE`` and streams parts from the file (no
whole-file buffering); botocore's standard retries cover transient failures of each request.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import StorageError
from .config import StorageSettings
from .diagnose import storage_error
from .progress import ProgressFn, Throttle
from .uri import parse

if TYPE_CHECKING:
    from ..contract.settings import Settings


def upload_dir(local_dir: str | os.PathLike[str], uri: str, *, progress: ProgressFn | None = None,
               settings: "Settings | None" = None) -> int:
    p = parse(uri)
    if p.scheme != "s3":
        raise StorageError(f"cannot upload to {uri}: only s3:// destinations are supported",
                           hint="set SYNAPSE_OUTPUT_URI to s3://bucket/prefix/", details={"uri": uri, "cause": "config"})
    root = Path(local_dir)
    if not root.is_dir():
        raise StorageError(f"cannot upload {root} to {uri}: not a directory", hint="check the output directory",
                           details={"uri": uri, "cause": "NoSuchKey"})
    prefix = p.key if (p.key == "" or p.key.endswith("/")) else p.key + "/"
    files: list[tuple[Path, str, int]] = []
    for dirpath, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            path = Path(dirpath) / name
            if not path.is_file():
                continue  # sockets, broken links
            rel = path.relative_to(root).as_posix()
            files.append((path, prefix + rel, path.stat().st_size))
    total = sum(size for _, _, size in files)
    throttle = Throttle(progress, uri, total)
    st = StorageSettings.of(settings)

    from .s3 import S3

    try:
        s3 = S3(st, upload=True)
    except Exception as exc:  # noqa: BLE001
        raise storage_error(exc, uri, "s3", action="upload") from None
    from boto3.s3.transfer import TransferConfig, create_transfer_manager

    config = TransferConfig(multipart_threshold=st.part_size, multipart_chunksize=st.part_size,
                            max_concurrency=st.concurrency, use_threads=True)
    done = [0]
    lock = threading.Lock()

    class _Progress:
        def on_progress(self, bytes_transferred: int, **_: object) -> None:
            with lock:
                done[0] += bytes_transferred
                current = done[0]
            throttle.update(current)

    from s3transfer.subscribers import BaseSubscriber

    class _Sub(BaseSubscriber):
        def on_progress(self, future: object, bytes_transferred: int, **kwargs: object) -> None:  # type: ignore[override]
            _Progress().on_progress(bytes_transferred)

    try:
        with create_transfer_manager(s3.client, config) as manager:
            futures = [manager.upload(str(path), p.bucket, key, subscribers=[_Sub()]) for path, key, _ in files]
            for f in futures:
                f.result()
    except Exception as exc:  # noqa: BLE001
        raise storage_error(exc, uri, s3.endpoint, action="upload") from None
    throttle.final(total, False)
    return total
