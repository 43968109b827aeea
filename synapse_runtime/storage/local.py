"""Local sources and destinations: plain paths are used in place; ``dest`` gets an atomic copy."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from ..errors import StorageError
from .cache import fsync_dir, fsync_tree


def check_local(path: Path, uri: str) -> Path:
    if not path.exists():
        raise StorageError(f"cannot fetch {uri} from local filesystem: no such file or directory (NoSuchKey)",
                           hint="check the path; in a container, check the volume mount",
                           details={"uri": uri, "endpoint": "local", "cause": "NoSuchKey"})
    if not os.access(path, os.R_OK):
        raise StorageError(f"cannot fetch {uri} from local filesystem: access denied (AccessDenied)",
                           hint="check the file's permissions and the container's user",
                           details={"uri": uri, "endpoint": "local", "cause": "AccessDenied"})
    return path


def materialize(src: Path, dest: Path, *, into_dir: bool | None = None) -> Path:
    """Copy ``src`` to ``dest`` atomically (sibling temp, fsync, rename); returns the final path.

    A file goes to ``dest`` itself, or inside it when ``dest`` is an existing directory or ends with
    a slash.  A directory becomes ``dest``; when ``dest`` already has contents, same-named entries
    are replaced one by one (each replacement atomic).
    """
    dest = Path(dest)
    if src.is_file():
        if into_dir or (into_dir is None and (dest.is_dir() or str(dest).endswith(os.sep))):
            dest = dest / src.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".{dest.name}.synapse-tmp.{secrets.token_hex(4)}"
        try:
            shutil.copyfile(src, tmp)
            fsync_tree(tmp)
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fsync_dir(dest.parent)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.synapse-tmp.{secrets.token_hex(4)}"
    try:
        shutil.copytree(src, tmp, symlinks=True)
        fsync_tree(tmp)
        if not dest.exists() or (dest.is_dir() and not any(dest.iterdir())):
            if dest.exists():
                dest.rmdir()
            os.rename(tmp, dest)
        else:
            for item in sorted(tmp.iterdir()):
                final = dest / item.name
                if final.is_dir() and not final.is_symlink():
                    shutil.rmtree(final)
                elif item.is_dir() and os.path.lexists(final):
                    final.unlink()
                os.replace(item, final)
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(dest.parent)
    return dest
