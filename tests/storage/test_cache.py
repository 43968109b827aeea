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
from synapse_runtime.storage.config import Settings

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


def test_pinned_entry_survives_eviction(s3, bucket: str, cache_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("SYNAPSE_CACHE_MAX_BYTES", "1")
    s3.put_object(Bucket=bucket, Key="x", Body=b"x" * 1000)
    s3.put_object(Bucket=bucket, Key="y", Body=b"y" * 1000)
    rx = fetch(f"s3://{bucket}/x", cache_dir=cache_dir)  # this process pins x
    ry = fetch(f"s3://{bucket}/y", cache_dir=cache_dir)
    assert rx.path.read_bytes() == b"x" * 1000 and ry.path.exists()


def test_stale_temp_cleaned(s3, bucket: str, cache_dir: Path) -> None:
    s3.put_object(Bucket=bucket, Key="s", Body=b"s")
    fetch(f"s3://{bucket}/s", cache_dir=cache_dir)
    dead = cache_dir / "tmp" / ("f" * 40 + ".dl.99999.abcd")  # left by a crashed process
    dead.mkdir()
    (dead / "half.bin").write_bytes(b"partial")
    s3.put_object(Bucket=bucket, Key="t", Body=b"t")
    fetch(f"s3://{bucket}/t", cache_dir=cache_dir)  # any download sweeps dead temps
    assert cache_state(cache_dir)[1] == []


def test_stale_temp_of_live_owner_kept(cache_dir: Path) -> None:
    cache = Cache.open(cache_dir, Settings.from_env())
    key = "e" * 40
    item = cache.tmp_path(key, "dl")
    item.mkdir()
    with cache.lock(key):
        code = ("import sys; from synapse_runtime.storage.cache import Cache; from synapse_runtime.storage.config import Settings;"
                "print(Cache.open(sys.argv[1], Settings.from_env()).clean_stale())")
        out = subprocess.run([sys.executable, "-c", code, str(cache_dir)], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "0" and item.exists()
    assert cache.clean_stale() == 1 and not item.exists()


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
