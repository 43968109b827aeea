"""The on-disk cache: complete entries, a temp area, locks, pins and LRU eviction.

Layout under the cache root (docs/storage.md)::

    objects/<key>/meta.json      one complete entry, renamed into place whole
    objects/<key>/<name>         the file, or the directory (prefix, extracted archive)
    tmp/<key>.<what>.<host>-<boot>-<pid>.<rand> work in progress; only ever written under locks/<key>.lock
    locks/<key>.lock             exclusive while an entry is produced (download once); heartbeated
    locks/<key>.pin              shared by every process using the entry; blocks its eviction

An entry exists only once ``rename(tmp/..., objects/<key>)`` happened, after its bytes and
meta.json were fsynced, so a crash at any moment leaves either a complete entry or garbage in
``tmp/`` that a later writer removes: at once when its key lock is free and its owner ran on this
kernel (flock is authoritative there), otherwise only once it is unlocked *and* untouched for
``SYNAPSE_CACHE_STALE_SECONDS``, because on a shared volume another node's live download may hold a
lock this node cannot see (node-local locks).

Every entry (an object, a prefix's tree, an extracted archive) comes to be through
``Cache.produce``, so these rules are written once: its callers only say how to fill a temp directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import time
from pathlib import Path
from typing import Any, Callable

from ..errors import StorageError
from .config import StorageSettings, cache_dir_candidates
from .lock import FileLock

_PINS: dict[str, FileLock] = {}  # pin file path -> shared lock held for the life of the process
#: the default bound is half the cache filesystem, but never more than this: network filesystems
#: report absurd sizes (EFS: 8 EiB), and an unbounded shared cache grows until the bill arrives
DEFAULT_MAX_BYTES_CEILING = 256 * 1024**3


def kernel_id() -> str:
    """12 hex digits of this kernel's boot id: the same in every container of a node, and only there.

    Temps of this kernel can be judged by their lock alone (flock always works within one kernel);
    temps of another (another node, or a sandboxed runtime such as gVisor) cannot.
    """
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            boot = re.sub(r"[^0-9a-f]", "", fh.read().lower())[:12]
    except OSError:
        boot = ""
    return boot or "unknown"


def owner_token() -> str:
    """``<host>-<boot>-<pid>`` for temp names: which kernel wrote a temp (and, for people, which pod)."""
    host = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:40] or "host"
    return f"{host}-{kernel_id()}-{os.getpid()}"


def newest_mtime(path: Path) -> float:
    """The latest mtime of ``path`` or anything below it (a writer's progress shows up here)."""
    try:
        newest = os.lstat(path).st_mtime
    except OSError:
        return 0.0
    if os.path.isdir(path) and not os.path.islink(path):
        for dirpath, dirs, files in os.walk(path):
            for n in dirs + files:
                try:
                    newest = max(newest, os.lstat(os.path.join(dirpath, n)).st_mtime)
                except OSError:
                    pass
    return newest


def entry_key(**parts: Any) -> str:
    """A stable hash of what identifies one version of a source (endpoint, bucket, key, ETag...)."""
    blob = json.dumps({"v": 1, **parts}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:40]


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: Path) -> None:
    """fsync every file and directory below ``path`` (bottom-up) so a rename publishes durable data."""
    if path.is_file():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return
    for dirpath, _dirs, files in os.walk(path, topdown=False):
        for f in files:
            p = os.path.join(dirpath, f)
            if os.path.islink(p):
                continue
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


def tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


class Cache:
    def __init__(self, root: Path, st: StorageSettings) -> None:
        self.root = root
        self.st = st
        self.objects = root / "objects"
        self.tmp = root / "tmp"
        self.locks = root / "locks"

    @classmethod
    def open(cls, cache_dir: str | os.PathLike[str] | None, st: StorageSettings) -> "Cache":
        """The first usable cache root; an explicitly chosen one that is not writable is an error."""
        errors = []
        for root in cache_dir_candidates(cache_dir, st.cache_dir):
            try:
                for sub in ("objects", "tmp", "locks"):
                    (root / sub).mkdir(parents=True, exist_ok=True)
                probe = root / "tmp" / f".probe.{os.getpid()}.{secrets.token_hex(4)}"
                probe.touch()
                probe.unlink()
                return cls(root, st)
            except OSError as exc:
                errors.append(f"{root}: {exc.strerror or exc}")
        raise StorageError(f"no writable cache directory ({'; '.join(errors)})",
                           hint="set SYNAPSE_CACHE_DIR to a writable directory (mount a volume there)",
                           details={"cause": "cache"})

    # ---- entries -------------------------------------------------------------------------
    def entry(self, key: str) -> Path:
        return self.objects / key

    def lookup(self, key: str) -> dict[str, Any] | None:
        """Meta of a complete entry, pinned against eviction and marked used; None when absent."""
        entry = self.entry(key)
        if not (entry / "meta.json").exists():
            return None
        self.pin(key)
        try:  # re-read after pinning: an evictor may have removed it just before
            meta = json.loads((entry / "meta.json").read_text())
            os.utime(entry)
        except (OSError, ValueError):
            return None
        meta["path"] = str(entry / meta["name"])
        return meta

    def pin(self, key: str) -> None:
        path = self.locks / f"{key}.pin"
        if str(path) in _PINS:
            return
        lock = FileLock(path, shared=True)
        if lock.acquire(blocking=True, timeout=30):
            _PINS[str(path)] = lock

    def lock(self, key: str) -> FileLock:
        """The key's producer lock: waiting for it is bounded by SYNAPSE_CACHE_LOCK_TIMEOUT (lock.py)."""
        return FileLock(self.locks / f"{key}.lock", stall_timeout=self.st.cache_lock_timeout, heartbeat=True)

    def tmp_path(self, key: str, what: str) -> Path:
        return self.tmp / f"{key}.{what}.{owner_token()}.{secrets.token_hex(4)}"

    def commit(self, key: str, work: Path, meta: dict[str, Any]) -> dict[str, Any]:
        """Publish ``work`` (a tmp dir holding ``meta['name']``) as the entry ``key``; caller holds the lock."""
        meta = {**meta, "created": time.time()}
        meta_path = work / "meta.json"
        with open(meta_path, "w") as fh:
            json.dump(meta, fh)
            fh.flush()
            os.fsync(fh.fileno())
        fsync_dir(work)
        os.utime(work)
        os.rename(work, self.entry(key))
        fsync_dir(self.objects)
        return self.lookup(key) or {**meta, "path": str(self.entry(key) / meta["name"])}

    def produce(self, key: str, what: str, make: Callable[[Path], dict[str, Any]], *,
                before_wait: Callable[[], None] | None = None) -> tuple[dict[str, Any], bool]:
        """The entry ``key`` and whether this call made it: the one way an entry comes to be.

        Download once, never half: a complete entry is returned (pinned) as is.  Otherwise the key's
        lock is taken (``before_wait`` runs first when another process holds it, e.g. to drop an idle
        connection), the entry looked up again (its producer may just have finished), dead temps swept,
        and ``make(work)`` writes ``work/<meta['name']>`` durably (fsynced) in a new temp directory
        (``what`` names it) and returns the meta to commit.  Whatever ``make`` raises, its temp and this
        key's dead temps are gone before the lock is released; after a commit the cache is trimmed.
        """
        meta = self.lookup(key)
        if meta is not None:
            return meta, False
        lock = self.lock(key)
        if not lock.acquire(blocking=False):
            if before_wait:
                before_wait()
            lock.acquire()
        work: Path | None = None
        try:
            meta = self.lookup(key)
            if meta is not None:
                return meta, False
            self.clean_stale()
            work = self.tmp_path(key, what)
            work.mkdir()
            meta = self.commit(key, work, make(work))
        finally:
            if work is not None:
                shutil.rmtree(work, ignore_errors=True)  # a failed make (after a commit it is gone already)
            self.clean_key_tmp(key)  # we hold its lock: its dead temps may go (rules: clean_key_tmp)
            lock.release()
        self.evict()
        return meta, True

    def update_meta(self, key: str, **fields: Any) -> None:
        """Record facts learned later (e.g. a sha256 computed on a hit), atomically."""
        entry = self.entry(key)
        try:
            meta = json.loads((entry / "meta.json").read_text())
        except (OSError, ValueError):
            return
        meta.update(fields)
        tmp = entry / f".meta.{os.getpid()}.{secrets.token_hex(4)}"
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, entry / "meta.json")

    def discard(self, key: str) -> None:
        """Remove an entry now (e.g. a cached file that failed a later check); caller holds the lock."""
        target = self.entry(key)
        if target.exists():
            grave = self.tmp_path(key, "discard")
            os.rename(target, grave)
            shutil.rmtree(grave, ignore_errors=True)

    # ---- housekeeping --------------------------------------------------------------------
    @staticmethod
    def _same_kernel(name: str) -> bool:
        """The temp was written on this kernel, so a free key lock proves its owner stopped working."""
        parts = name.split(".")
        if len(parts) != 4:
            return False  # an older layout, or not ours: judged by age only
        fields = parts[2].rsplit("-", 2)
        return len(fields) == 3 and fields[1] != "unknown" and fields[1] == kernel_id()

    def clean_stale(self) -> int:
        """Remove temp items whose owner is gone; returns how many.

        Gone means: its key lock is free (temps are only written under it), and either it was written
        on this kernel, or nothing below it changed for ``stale_seconds`` (SYNAPSE_CACHE_STALE_SECONDS).
        A free lock alone is no proof for another node's temp: node-local locks (NFS ``local_lock``,
        gcsfuse) do not show its download, whose files keep changing.
        """
        removed = 0
        try:
            names = os.listdir(self.tmp)
        except OSError:
            return 0
        for name in names:
            if name.startswith(".probe."):
                continue
            key = name.split(".", 1)[0]
            lock = FileLock(self.locks / f"{key}.lock")
            if not lock.acquire(blocking=False):
                continue  # someone is working on it
            try:
                removed += self._remove_if_dead(name)
            finally:
                lock.release()
        return removed

    def clean_key_tmp(self, key: str) -> int:
        """Remove the temp items of ``key`` whose owner is gone; the caller holds the key's lock."""
        try:
            names = [n for n in os.listdir(self.tmp) if n.startswith(key + ".")]
        except OSError:
            return 0
        return sum(self._remove_if_dead(name) for name in names)

    def _remove_if_dead(self, name: str) -> int:
        """With the key lock free or ours: remove a temp of this kernel, or one untouched for long."""
        path = self.tmp / name
        if not self._same_kernel(name) and time.time() - newest_mtime(path) < self.st.stale_seconds:
            return 0  # maybe another node's live work, under a lock this node cannot see
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        return 1

    def max_bytes(self) -> int:
        """SYNAPSE_CACHE_MAX_BYTES, else min(half the cache filesystem, DEFAULT_MAX_BYTES_CEILING)."""
        if self.st.cache_max_bytes is not None:
            return self.st.cache_max_bytes
        try:
            vfs = os.statvfs(self.root)
        except OSError:
            return 0
        return min(vfs.f_blocks * vfs.f_frsize // 2, DEFAULT_MAX_BYTES_CEILING)

    def evict(self) -> list[str]:
        """Remove least recently used, unpinned entries until the cache fits its bound."""
        limit = self.max_bytes()
        if limit <= 0:
            return []
        guard = FileLock(self.locks / "evict.lock")
        if not guard.acquire(blocking=False):
            return []  # another process is evicting
        removed: list[str] = []
        try:
            entries = []
            total = 0
            for name in os.listdir(self.objects):
                entry = self.objects / name
                try:
                    meta = json.loads((entry / "meta.json").read_text())
                    used = entry.stat().st_mtime
                except (OSError, ValueError):
                    continue
                size = int(meta.get("bytes", 0))
                total += size
                entries.append((used, name, size))
            if total <= limit:
                return []
            for _used, name, size in sorted(entries):
                if total <= limit:
                    break
                pin = FileLock(self.locks / f"{name}.pin")
                if str(pin.path) in _PINS:
                    continue  # this process uses it
                if not pin.acquire(blocking=False):
                    continue  # in use by some process
                try:
                    grave = self.tmp_path(name, "evicted")
                    try:
                        os.rename(self.objects / name, grave)
                    except OSError:
                        continue
                finally:
                    pin.release()
                shutil.rmtree(grave, ignore_errors=True)
                total -= size
                removed.append(name)
            return removed
        finally:
            guard.release()
