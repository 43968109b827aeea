"""Safe extraction of .zip, .tar, .tar.gz/.tgz (and other tarfile compressions) into a new directory.

Archives come from outside; extraction must not be a way to write elsewhere or fill the disk:
no absolute names, no ``..``, nothing written through a symlink, links (tar) only to targets
inside the tree, no devices or fifos, and budgets (limits.py) on total bytes, file count, expansion
ratio and the filesystem's free space, checked against what the archive declares before writing
and against what was written.  The caller extracts into a temp directory and renames it into place,
so a failed or interrupted extraction never looks complete.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path
from typing import IO

from ..errors import ArchiveError
from .limits import Limits, free_bytes
from .names import safe_name

_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar", ".zip")


def archive_stem(name: str) -> str:
    """``model.tar.gz`` -> ``model``: the directory name of the extracted tree (always a safe name:
    ``...zip`` would give ``..``, so the stem goes through :func:`safe_name` again)."""
    name = safe_name(name)
    lower = name.lower()
    for suffix in _SUFFIXES:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return safe_name(name[: -len(suffix)], fallback="archive")
    return safe_name(name + ".d")


def kind_of(path: Path) -> str | None:
    """'zip' or 'tar' by content (names lie, e.g. presigned URLs without a suffix)."""
    if zipfile.is_zipfile(path):
        return "zip"
    try:
        if tarfile.is_tarfile(path):
            return "tar"
    except (OSError, tarfile.TarError):
        pass
    return None


def safe_member_path(name: str, label: str) -> str:
    """A normalized relative POSIX path, or ArchiveError for anything that could leave the target.

    The one rule for names from outside that become paths below a directory: archive members, and
    the keys below an S3 prefix (prefix.py).
    """
    raw = name.replace("\\", "/")
    if raw.startswith("/") or (len(raw) > 1 and raw[1] == ":") or "\x00" in raw:
        raise ArchiveError(f"{label}: absolute member path {name!r} refused", hint="the archive is unsafe; rebuild it with relative paths",
                           details={"cause": "absolute path", "member": name})
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ArchiveError(f"{label}: member path {name!r} leaves the target ('..') refused",
                           hint="the archive is unsafe; rebuild it without '..'", details={"cause": "path traversal", "member": name})
    return "/".join(parts)


def _prepare_parent(root: Path, rel: str, label: str) -> Path:
    """Create the parent directories of ``rel`` under ``root``, refusing to pass through a symlink."""
    target = root / rel
    cur = root
    for part in rel.split("/")[:-1]:
        cur = cur / part
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            os.mkdir(cur, 0o755)
            continue
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
            raise ArchiveError(f"{label}: member {rel!r} would be written through a link or file {cur.name!r}",
                               hint="the archive is unsafe", details={"cause": "link escape", "member": rel})
    if os.path.lexists(target) and not os.path.isdir(target) or os.path.islink(target):
        os.unlink(target)  # a later duplicate replaces the earlier entry, never writes through it
    return target


def _copy(src: IO[bytes], target: Path, mode: int, limits: Limits) -> None:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "wb") as out:
        while True:
            block = src.read(1 << 20)
            if not block:
                break
            limits.add_bytes(len(block))
            out.write(block)


def _inside(root: Path, path: str) -> bool:
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return real == real_root or real.startswith(real_root + os.sep)


def extract(archive: Path, target: Path, *, max_bytes: int, max_files: int, label: str,
            max_ratio: float = 0.0) -> int:
    """Extract ``archive`` into the new directory ``target``; returns the bytes written.

    Budgets (see limits.py): ``max_bytes`` and ``max_files`` in all, at most ``max_ratio`` times the
    archive's size (0: no ratio check), and never more than the target filesystem has free.
    """
    kind = kind_of(archive)
    if kind is None:
        raise ArchiveError(f"{label}: not a zip or tar archive", hint="fetch without extract, or check the file",
                           details={"cause": "not an archive"})
    target.mkdir(parents=True)
    limits = Limits(label, max_bytes=max_bytes, max_files=max_files, archive_size=archive.stat().st_size,
                    max_ratio=max_ratio, free=free_bytes(target))
    try:
        if kind == "zip":
            _extract_zip(archive, target, limits, label)
        else:
            _extract_tar(archive, target, limits, label)
    except ArchiveError:
        raise
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise ArchiveError(f"{label}: corrupt or unreadable archive ({type(exc).__name__}: {exc})",
                           hint="re-upload the archive", details={"cause": "corrupt"}) from exc
    # belt and braces: no link anywhere in the tree may resolve outside it
    for dirpath, dirs, files in os.walk(target):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            if os.path.islink(p) and not _inside(target, p):
                raise ArchiveError(f"{label}: link {os.path.relpath(p, target)!r} points outside the target",
                                   hint="the archive is unsafe", details={"cause": "link escape"})
    return limits.bytes


def _extract_zip(archive: Path, root: Path, limits: Limits, label: str) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        limits.count_file(len(infos))  # the central directory tells it all before anything is written
        limits.files = 0
        limits.expect(sum(i.file_size for i in infos))
        for info in infos:
            limits.count_file()
            rel = safe_member_path(info.filename, label)
            if not rel:
                continue
            mode = (info.external_attr >> 16) & 0xFFFF
            if stat.S_ISLNK(mode):
                raise ArchiveError(f"{label}: zip member {info.filename!r} is a symlink; refused",
                                   hint="the archive is unsafe", details={"cause": "link", "member": info.filename})
            if info.is_dir():
                _prepare_parent(root, rel + "/x", label)
                continue
            target = _prepare_parent(root, rel, label)
            with zf.open(info) as src:
                _copy(src, target, 0o755 if mode & 0o111 else 0o644, limits)


def _extract_tar(archive: Path, root: Path, limits: Limits, label: str) -> None:
    with tarfile.open(archive, mode="r:*") as tf:
        for member in tf:
            limits.count_file()
            rel = safe_member_path(member.name, label)
            if not rel:
                continue
            if member.isdir():
                _prepare_parent(root, rel + "/x", label)
                continue
            if member.isreg():
                limits.expect(member.size)  # the header's size, before any of it is written
                target = _prepare_parent(root, rel, label)
                src = tf.extractfile(member)
                assert src is not None
                _copy(src, target, 0o755 if member.mode & 0o111 else 0o644, limits)
            elif member.issym():
                link = member.linkname.replace("\\", "/")
                if link.startswith("/"):
                    raise ArchiveError(f"{label}: symlink {member.name!r} -> {member.linkname!r} is absolute; refused",
                                       hint="the archive is unsafe", details={"cause": "link escape", "member": member.name})
                resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), link))
                if resolved == ".." or resolved.startswith("../"):
                    raise ArchiveError(f"{label}: symlink {member.name!r} -> {member.linkname!r} leaves the target; refused",
                                       hint="the archive is unsafe", details={"cause": "link escape", "member": member.name})
                target = _prepare_parent(root, rel, label)
                os.symlink(link, target)
                if not _inside(root, str(target)):
                    raise ArchiveError(f"{label}: symlink {member.name!r} resolves outside the target; refused",
                                       hint="the archive is unsafe", details={"cause": "link escape", "member": member.name})
            elif member.islnk():
                src_rel = safe_member_path(member.linkname, label)
                src = root / src_rel
                if not src_rel or os.path.islink(src) or not src.is_file() or not _inside(root, str(src)):
                    raise ArchiveError(f"{label}: hard link {member.name!r} -> {member.linkname!r} has no regular target inside; refused",
                                       hint="the archive is unsafe", details={"cause": "link escape", "member": member.name})
                target = _prepare_parent(root, rel, label)
                limits.add_bytes(src.stat().st_size)
                shutil.copyfile(src, target, follow_symlinks=False)
            else:
                raise ArchiveError(f"{label}: member {member.name!r} is a device or fifo; refused",
                                   hint="the archive is unsafe", details={"cause": "special file", "member": member.name})
