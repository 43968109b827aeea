"""The cache lock on shared volumes (issue 14 item 4): ENOLCK, and a bounded wait for a lost holder.

A "lost node" is simulated by a real downloading process frozen with SIGSTOP while it holds the
key's lock: its flock stays (as an NFSv3 lock of a vanished client does) and its heartbeat stops.
"""

from __future__ import annotations

import errno
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import Iterator

import pytest

from synapse_runtime.errors import StorageError
from synapse_runtime.storage import fetch
from synapse_runtime.storage import lock as lock_mod
from synapse_runtime.storage.lock import FileLock
from synapse_runtime.testing import parse_events

REPO = Path(__file__).resolve().parents[2]
BODY = os.urandom(256 * 1024)


class _Stalling(http.server.BaseHTTPRequestHandler):
    """Sends headers and half the body, then waits for ``release`` before the rest."""

    release = threading.Event()

    def do_GET(self) -> None:  # noqa: N802
        try:
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.send_header("ETag", '"v1"')
            self.end_headers()
            self.wfile.write(BODY[: len(BODY) // 2])
            self.wfile.flush()
            self.release.wait(60)
            self.wfile.write(BODY[len(BODY) // 2:])
        except OSError:
            pass  # a waiter closes its first response before reading the body

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stalling() -> Iterator[tuple[str, threading.Event]]:
    release = threading.Event()
    handler = type("Handler", (_Stalling,), {"release": release})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/m/model.bin", release
    release.set()
    server.shutdown()
    server.server_close()


def _env(cache_dir: Path, timeout: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNAPSE_")}
    env.update(SYNAPSE_CACHE_DIR=str(cache_dir), SYNAPSE_CACHE_LOCK_TIMEOUT=timeout, SYNAPSE_FETCH_BACKOFF="0.01")
    return env


def _start_holder(url: str, cache_dir: Path, timeout: str) -> subprocess.Popen:
    """A process downloading ``url``: once its temp appears it holds the key's lock."""
    code = "import sys; from synapse_runtime.storage import fetch; print(fetch(sys.argv[1]).path)"
    proc = subprocess.Popen([sys.executable, "-c", code, url], env=_env(cache_dir, timeout),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (cache_dir / "tmp").exists() or not [n for n in os.listdir(cache_dir / "tmp") if not n.startswith(".")]:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    return proc


def test_lock_held_by_lost_node_is_not_waited_for_forever(stalling, tmp_path: Path) -> None:
    url, release = stalling
    cache_dir = tmp_path / "cache"
    holder = _start_holder(url, cache_dir, "2")
    os.kill(holder.pid, signal.SIGSTOP)  # the node is gone: its lock stays, its heartbeat stops
    try:
        t0 = time.monotonic()
        run = subprocess.run([sys.executable, "-m", "synapse_runtime", "run", "--plugin", str(REPO / "plugins/faults"),
                              "--action", "noop", "--checkpoint", url, "--output", str(tmp_path / "out")],
                             env=_env(cache_dir, "2"), capture_output=True, text=True, timeout=60)
        elapsed = time.monotonic() - t0
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert run.returncode == 4, (run.stdout[-2000:], run.stderr[-2000:])
    assert 2 <= elapsed < 30, elapsed
    errors = [e for e in parse_events(run.stdout) if e.get("type") == "error"]
    assert len(errors) == 1, run.stdout[-2000:]
    err = errors[0]
    text = json.dumps(err)
    assert "SYNAPSE_CACHE_LOCK_TIMEOUT" in err["message"] and err["code"] == 4, err
    assert "lock timeout" in text and "SYNAPSE_CACHE_LOCK_TIMEOUT" in (err.get("hint") or ""), err
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["exit_code"] == 4 and result["status"] == "failed", result


def test_live_holder_is_waited_for_beyond_the_timeout(stalling, tmp_path: Path, monkeypatch) -> None:
    """A holder that is alive (heartbeating) is waited for however long it works: here 5 s, with a
    2 s timeout; then the waiter finds the entry complete and transfers nothing."""
    url, release = stalling
    cache_dir = tmp_path / "cache"
    holder = _start_holder(url, cache_dir, "2")
    threading.Timer(5.0, release.set).start()
    monkeypatch.setenv("SYNAPSE_CACHE_LOCK_TIMEOUT", "2")
    try:
        t0 = time.monotonic()
        r = fetch(url, cache_dir=cache_dir)
        elapsed = time.monotonic() - t0
        out, err = holder.communicate(timeout=30)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert holder.returncode == 0, err
    assert r.path.read_bytes() == BODY and r.bytes == 0 and r.cached and Path(out.strip()) == r.path
    assert elapsed >= 3, elapsed  # it did wait past its own 2 s timeout


def test_stall_timeout_bounds_a_plain_flock_holder(tmp_path: Path) -> None:
    """FileLock alone: a holder in another process that never heartbeats is given up on, exit 4."""
    path = tmp_path / "k.lock"
    code = ("import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        with pytest.raises(StorageError) as ei:
            FileLock(path, stall_timeout=0.5, heartbeat=True).acquire()
        assert 0.5 <= time.monotonic() - t0 < 5
    finally:
        holder.kill()
        holder.wait()
    assert ei.value.exit_code == 4 and ei.value.details["knob"] == "SYNAPSE_CACHE_LOCK_TIMEOUT"
    lock = FileLock(path, stall_timeout=0.5)
    assert lock.acquire()  # the holder died: its flock went with it
    lock.release()


def _zip(tmp_path: Path) -> Path:
    p = tmp_path / "m.zip"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("w.bin", b"w")
    return p


def test_filesystem_without_locks_is_a_clear_storage_error(tmp_path: Path, monkeypatch) -> None:
    """NFSv3 without lockd: flock fails with ENOLCK.  Simulated here: what the runtime makes of it."""
    real = lock_mod.fcntl.flock

    def no_locks(fd: int, op: int) -> None:
        if op & ~lock_mod.fcntl.LOCK_NB != lock_mod.fcntl.LOCK_UN:
            raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))
        real(fd, op)

    monkeypatch.setattr(lock_mod.fcntl, "flock", no_locks)
    cache_dir = tmp_path / "cache"
    with pytest.raises(StorageError) as ei:
        fetch(str(_zip(tmp_path)), cache_dir=cache_dir, extract=True)
    err = ei.value
    assert err.exit_code == 4 and "refuses file locks (ENOLCK" in str(err) and "SYNAPSE_CACHE_DIR" in str(err)
    assert err.details["cause"] == "locks unsupported" and err.details["errno"] == "ENOLCK"
    assert not any((cache_dir / "objects").iterdir())  # nothing was produced without the lock
    monkeypatch.setattr(lock_mod.fcntl, "flock", real)
    assert (fetch(str(_zip(tmp_path)), cache_dir=cache_dir, extract=True).path / "w.bin").read_bytes() == b"w"


def test_heartbeat_touches_the_lock_file_while_held(tmp_path: Path) -> None:
    lock = FileLock(tmp_path / "h.lock", stall_timeout=1.2, heartbeat=True)  # beats every 0.2 s
    assert lock.acquire()
    try:
        first = os.stat(lock.path).st_mtime_ns
        time.sleep(1.0)
        assert os.stat(lock.path).st_mtime_ns > first
    finally:
        lock.release()
    settled = os.stat(lock.path).st_mtime_ns
    time.sleep(0.5)
    assert os.stat(lock.path).st_mtime_ns == settled  # released: no more beats
