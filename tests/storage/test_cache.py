"""Cache mechanics: several processes download once, LRU eviction, stale temp cleanup, pins."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

from synapse_runtime.storage import fetch
from synapse_runtime.storage.cache import Cache
from synapse_runtime.storage.config import StorageSettings

from .conftest import cache_state


def _worker(uri: str, cache_dir: str, q) -> None:
    try:
        r = fetch(uri, cache_dir=cache_dir)
        q.put((str(r.path), hashlib.sha256(r.path.read_bytes()).hexdigest(), r.bytes))
    except BaseException as exc:  # noqa: BLE001
        q.put(("error", repr(exc), 0))


def test_concurrent_processes_download_once(s3, bucket: str, cache_dir: Path, proxy) -> None:
    data = os.urandom(4 * 1024 * 1024)
    s3.put_object(Bucket=bucket, Key="shared.bin", Body=data)
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(f"s3://{bucket}/shared.bin", str(cache_dir), q)) for _ in range(5)]
    for p in procs:
        p.start()
    results = [q.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
    want = hashlib.sha256(data).hexdigest()
    assert all(r[1] == want for r in results), results
    assert len({r[0] for r in results}) == 1
    assert sum(1 for r in results if r[2] > 0) == 1  # exactly one process transferred bytes
    assert proxy.count("GET") == 1  # one download in all
    assert cache_state(cache_dir)[1] == []


def _names(cache_dir: Path) -> set[str]:
    return {p.name for o in cache_state(cache_dir)[0] for p in (cache_dir / "objects" / o).iterdir() if p.name != "meta.json"}


def test_lru_eviction(s3, bucket: str, cache_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("SYNAPSE_CACHE_MAX_BYTES", str(250_000))
    for name in ("a", "b", "c"):
        s3.put_object(Bucket=bucket, Key=name, Body=name.encode() * 100_000)
    # other processes fetch a, b, then a again (a is now the most recently used; they hold no pins after exit)
    for name in ("a", "b", "a"):
        subprocess.run([sys.executable, "-c", "import sys; from synapse_runtime.storage import fetch; "
                        "fetch(sys.argv[1], cache_dir=sys.argv[2])", f"s3://{bucket}/{name}", str(cache_dir)],
                       check=True, env=os.environ.copy())
        time.sleep(0.02)
    assert _names(cache_dir) == {"a", "b"}
    r = fetch(f"s3://{bucket}/c", cache_dir=cache_dir)  # 300 kB > 250 kB: b, the least recently used, goes
    assert r.path.exists() and _names(cache_dir) == {"a", "c"}


def _fetch_in_subprocess(uri: str, cache_dir: Path) -> None:
    """A fetch by another process, which exits: it holds no pin afterwards."""
    subprocess.run([sys.executable, "-c", "import sys; from synapse_runtime.storage import fetch; "
                    "fetch(sys.argv[1], cache_dir=sys.argv[2])", uri, str(cache_dir)], check=True, env=os.environ.copy())


def test_pinned_entry_survives_eviction(s3, bucket: str, cache_dir: Path, monkeypatch) -> None:
    """Over the bound, eviction removes what nobody uses (z) and keeps what this process holds (x, y)."""
    monkeypatch.setenv("SYNAPSE_CACHE_MAX_BYTES", "1")
    for k in "xyz":
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode() * 1000)
    rx = fetch(f"s3://{bucket}/x", cache_dir=cache_dir)  # this process pins x
    _fetch_in_subprocess(f"s3://{bucket}/z", cache_dir)  # z: cached by a process that has exited
    assert _names(cache_dir) == {"x", "z"}  # the subprocess could not evict x: this process pins it
    ry = fetch(f"s3://{bucket}/y", cache_dir=cache_dir)
    assert rx.path.read_bytes() == b"x" * 1000 and ry.path.read_bytes() == b"y" * 1000
    assert _names(cache_dir) == {"x", "y"}  # z was evicted: an evict() that does nothing fails here
    assert cache_state(cache_dir)[1] == []  # and its grave in tmp/ is gone too


def test_stale_temp_cleaned(s3, bucket: str, cache_dir: Path) -> None:
    """A temp left by a crashed process of this kernel (any container of this node) goes at once."""
    from synapse_runtime.storage.cache import kernel_id

    s3.put_object(Bucket=bucket, Key="s", Body=b"s")
    fetch(f"s3://{bucket}/s", cache_dir=cache_dir)
    dead = cache_dir / "tmp" / f"{'f' * 40}.dl.other-pod-{kernel_id()}-99999.abcd"  # left by a crashed process
    dead.mkdir()
    (dead / "half.bin").write_bytes(b"partial")
    s3.put_object(Bucket=bucket, Key="t", Body=b"t")
    fetch(f"s3://{bucket}/t", cache_dir=cache_dir)  # any download sweeps dead temps
    assert cache_state(cache_dir)[1] == []


def test_foreign_temp_kept_until_stale(cache_dir: Path, monkeypatch) -> None:
    """Issue 14 item 4: an unlocked temp of another node (its lock may be node-local) is kept while it
    changes, and removed only once nothing below it changed for SYNAPSE_CACHE_STALE_SECONDS."""
    monkeypatch.setenv("SYNAPSE_CACHE_STALE_SECONDS", "600")
    cache = Cache.open(cache_dir, StorageSettings.of())
    item = cache.tmp / f"{'a' * 40}.dl.other_node-0123456789ab-7.abcd"  # another kernel: another node
    item.mkdir()
    (item / "model.bin").write_bytes(b"being written by another node")
    old_format = cache.tmp / f"{'b' * 40}.dl.12345.abcd"  # the layout before owner tokens: judged by age
    old_format.write_bytes(b"x")
    assert cache.clean_stale() == 0 and item.exists() and old_format.exists()
    past = time.time() - 3600
    os.utime(item, (past, past))
    assert cache.clean_stale() == 0 and item.exists()  # the file inside is fresh: its writer is alive
    os.utime(item / "model.bin", (past, past))
    os.utime(old_format, (past, past))
    assert cache.clean_stale() == 2 and not item.exists() and not old_format.exists()


def test_stale_temp_of_live_owner_kept(cache_dir: Path) -> None:
    cache = Cache.open(cache_dir, StorageSettings.of())
    key = "e" * 40
    item = cache.tmp_path(key, "dl")
    item.mkdir()
    with cache.lock(key):
        code = ("import sys; from synapse_runtime.storage.cache import Cache; from synapse_runtime.storage.config import StorageSettings;"
                "print(Cache.open(sys.argv[1], StorageSettings.of()).clean_stale())")
        out = subprocess.run([sys.executable, "-c", code, str(cache_dir)], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "0" and item.exists()
    assert cache.clean_stale() == 1 and not item.exists()  # unlocked on this kernel: garbage


def test_default_bound_is_capped(cache_dir: Path, monkeypatch) -> None:
    """Issue 14 item 4: EFS reports 8 EiB; the default bound is min(half the filesystem, 256 GiB)."""
    from synapse_runtime.storage import cache as cache_mod

    monkeypatch.delenv("SYNAPSE_CACHE_MAX_BYTES", raising=False)
    cache = Cache.open(cache_dir, StorageSettings.of())
    real = os.statvfs(cache_dir)
    assert cache.max_bytes() == min(real.f_blocks * real.f_frsize // 2, cache_mod.DEFAULT_MAX_BYTES_CEILING)

    class Efs:  # what statvfs says on Amazon EFS
        f_blocks, f_frsize, f_bavail = 2**63 // 4096, 4096, 2**63 // 4096

    monkeypatch.setattr(cache_mod.os, "statvfs", lambda path: Efs)
    assert cache.max_bytes() == 256 * 1024**3
    monkeypatch.setenv("SYNAPSE_CACHE_MAX_BYTES", "1T")
    assert Cache.open(cache_dir, StorageSettings.of()).max_bytes() == 1024**4


def test_crash_mid_download_leaves_nothing_complete(s3, bucket: str, cache_dir: Path, proxy, monkeypatch) -> None:
    """Kill a downloading process: no entry appears; the next fetch completes and cleans up."""
    from .netutil import Fault

    data = os.urandom(3 * 1024 * 1024)
    s3.put_object(Bucket=bucket, Key="k.bin", Body=data)
    proxy.faults[:] = [Fault("stall", 1024 * 1024, seconds=5)]
    code = f"from synapse_runtime.storage import fetch; fetch('s3://{bucket}/k.bin', cache_dir={str(cache_dir)!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], env=os.environ.copy())
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not cache_state(cache_dir)[1]:
        time.sleep(0.05)
    assert cache_state(cache_dir)[1], "the download never started"
    time.sleep(0.3)
    proc.kill()
    proc.wait()
    assert cache_state(cache_dir)[0] == []  # nothing looks complete
    r = fetch(f"s3://{bucket}/k.bin", cache_dir=cache_dir)
    assert r.path.read_bytes() == data and cache_state(cache_dir)[1] == []


def test_download_keeps_another_nodes_temp_of_the_same_key(s3, bucket: str, cache_dir: Path) -> None:
    """After producing an entry, its producer sweeps that key's temps: this kernel's leftovers go,
    a fresh temp of another node (whose lock this node may not see) stays."""
    from synapse_runtime.storage.cache import kernel_id

    s3.put_object(Bucket=bucket, Key="m", Body=b"m" * 1000)
    key = Path(fetch(f"s3://{bucket}/m", cache_dir=cache_dir).path).parent.name
    cache = Cache.open(cache_dir, StorageSettings.of())
    with cache.lock(key):
        cache.discard(key)  # so that the next fetch downloads again, under the key's lock
    ours = cache.tmp / f"{key}.dl.crashed-{kernel_id()}-99999.abcd"
    theirs = cache.tmp / f"{key}.dl.other_node-0123456789ab-7.abcd"
    for item in (ours, theirs):
        item.mkdir()
        (item / "m").write_bytes(b"partial")
    r = fetch(f"s3://{bucket}/m", cache_dir=cache_dir)
    assert r.path.read_bytes() == b"m" * 1000 and r.bytes == 1000
    assert not ours.exists() and theirs.exists()
    assert cache_state(cache_dir)[1] == [theirs.name]


def test_produce_makes_once_and_a_failed_make_leaves_nothing(cache_dir: Path) -> None:
    """Cache.produce, the one way an entry is made: a failure leaves no entry, no temp and a free lock;
    a success is committed once and a hit afterwards (pinned, not made again)."""
    import pytest

    cache = Cache.open(cache_dir, StorageSettings.of())
    key = "d" * 40
    calls: list[Path] = []

    def failing(work: Path) -> dict:
        calls.append(work)
        (work / "f").write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        cache.produce(key, "dl", failing)
    assert cache.lookup(key) is None and os.listdir(cache.tmp) == []
    lock = cache.lock(key)
    assert lock.acquire(blocking=False)  # released: nobody waits on a failed producer
    lock.release()

    def making(work: Path) -> dict:
        calls.append(work)
        (work / "f").write_bytes(b"whole")
        return {"name": "f", "bytes": 5}

    meta, made = cache.produce(key, "dl", making)
    assert made and Path(meta["path"]).read_bytes() == b"whole" and os.listdir(cache.tmp) == []
    again, made = cache.produce(key, "dl", making)
    assert not made and again["path"] == meta["path"] and len(calls) == 2
