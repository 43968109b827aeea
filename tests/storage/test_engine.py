"""The download engine's ``auto`` strategy on fake sources: a probe range decides whether ranges pay.

A server where ranges scale (Garage, AWS, MinIO) gets every worker; one that punishes ranged GETs (moto
re-reads the whole object for each) keeps its one stream, after a single probe range.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from synapse_runtime.storage.config import StorageSettings
from synapse_runtime.storage.transfer import ObjectInfo, download

MiB = 1 << 20


class Source:
    """An object in memory served at ``rate`` bytes/s per stream; a ranged open may cost ``range_delay`` s."""

    def __init__(self, data: bytes, rate: float, range_delay: float = 0.0) -> None:
        self.data, self.rate, self.range_delay = data, rate, range_delay
        self.opens: list[tuple[int, int]] = []
        self.lock = threading.Lock()
        self.busy = threading.Lock()

    def open(self, start: int, end: int):
        with self.lock:
            self.opens.append((start, end))
        if start > 0 and self.range_delay:
            with self.busy:  # like moto: the whole server is busy re-reading the object meanwhile
                time.sleep(self.range_delay)
        src = self

        class Body:
            pos = start

            def read(self, n: int) -> bytes:
                n = min(n, end - self.pos)
                with src.busy:
                    pass
                time.sleep(n / src.rate)
                out = src.data[self.pos:self.pos + n]
                self.pos += n
                return out

            def close(self) -> None:
                pass

        return Body()


def _settings(monkeypatch, **env: str) -> StorageSettings:
    for k, v in {"SYNAPSE_S3_PART_SIZE": str(MiB), "SYNAPSE_S3_CHUNK_SIZE": str(256 * 1024),
                 "SYNAPSE_S3_CONCURRENCY": "6", "SYNAPSE_S3_SPLIT_AFTER": "0.1", **env}.items():
        monkeypatch.setenv(k, v)
    return StorageSettings.of()


def _run(tmp_path: Path, src: Source, st: StorageSettings) -> bytes:
    fd = os.open(tmp_path / "out", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        download(fd, ObjectInfo(size=len(src.data)), src.open, st)
    finally:
        os.close(fd)
    return (tmp_path / "out").read_bytes()


def test_ranges_that_scale_get_every_worker(tmp_path: Path, monkeypatch) -> None:
    data = os.urandom(24 * MiB)
    src = Source(data, rate=40 * MiB)  # each stream 40 MiB/s: more streams, more bytes
    assert _run(tmp_path, src, _settings(monkeypatch)) == data
    assert len(src.opens) > 10  # the tail went out as 1 MiB ranges


def test_ranges_that_cost_more_leave_one_stream(tmp_path: Path, monkeypatch) -> None:
    data = os.urandom(24 * MiB)
    src = Source(data, rate=60 * MiB, range_delay=0.4)  # a ranged GET first "re-reads" the object
    t0 = time.monotonic()
    assert _run(tmp_path, src, _settings(monkeypatch)) == data
    ranged = [o for o in src.opens if o[0] > 0]
    assert len(ranged) == 1, src.opens  # the probe only: the stream went on
    assert time.monotonic() - t0 < 24 / 60 + 1.5  # about one stream's time, not many ranges' delays


@pytest.mark.parametrize("strategy", ["single", "auto"])
def test_small_or_single_runs_inline_without_worker_threads(tmp_path: Path, monkeypatch, strategy: str) -> None:
    data = os.urandom(3 * MiB)
    src = Source(data, rate=1000 * MiB)
    before = {t.name for t in threading.enumerate()}
    seen: list[set[str]] = []
    orig = src.open

    def spy(start: int, end: int):
        seen.append({t.name for t in threading.enumerate()} - before)
        return orig(start, end)

    src.open = spy  # type: ignore[method-assign]
    assert _run(tmp_path, src, _settings(monkeypatch, SYNAPSE_S3_STRATEGY=strategy)) == data
    assert all("synapse-fetch" not in names for names in seen)


def test_interrupted_prefix_cancels_queued_objects_and_joins_running_ones() -> None:
    """SIGTERM in the runner arrives as an exception in the main thread: queued objects never start,
    running ones see ``cancel`` and stop, and all are joined before the exception leaves."""
    import signal

    from synapse_runtime.storage.prefix import _run_all

    cancel = threading.Event()
    started, finished = [], []

    def one(rel: str, o: dict) -> None:
        started.append(rel)
        cancel.wait(5)  # a download that only stops when cancelled
        finished.append(rel)

    # Python's own SIGINT handler, whatever an earlier test of the session left installed (a run's
    # signal handling in-process): this test is about _run_all, not about who handles the signal.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()  # a real signal, as SIGTERM is
        with pytest.raises(KeyboardInterrupt):
            _run_all(one, [(f"f{i}", {}) for i in range(40)], 2, cancel)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert cancel.is_set() and len(started) == 2 and sorted(finished) == sorted(started)


def test_first_failure_is_reported_not_the_cancellations_it_caused() -> None:
    from synapse_runtime.storage.prefix import _run_all
    from synapse_runtime.storage.transfer import DownloadCancelled

    cancel = threading.Event()

    def one(rel: str, o: dict) -> None:
        if rel == "f1":
            time.sleep(0.1)
            raise OSError("disk on fire")
        if not cancel.wait(5):
            return
        raise DownloadCancelled("cancelled")

    with pytest.raises(OSError, match="disk on fire"):
        _run_all(one, [(f"f{i}", {}) for i in range(20)], 3, cancel)


def test_failed_download_joins_workers_blocked_in_read(tmp_path: Path, monkeypatch) -> None:
    """A range that fails ends the download; a worker stuck in ``body.read`` is woken (abort) and joined
    before ``download`` returns, so it can never write into a file descriptor the caller closed."""
    from synapse_runtime.storage.retry import HTTPStatusError

    size = 8 * MiB
    released = threading.Event()

    class Stuck:
        def read(self, n: int) -> bytes:
            released.wait(30)  # like a socket with nothing to read; only abort() wakes it
            return b""

        def abort(self) -> None:
            released.set()

        def close(self) -> None:
            pass

    def opener(start: int, end: int):
        if start == 0:
            time.sleep(0.2)  # the others are in read() by now
            raise HTTPStatusError(403, "AccessDenied")
        return Stuck()

    st = _settings(monkeypatch, SYNAPSE_S3_STRATEGY="parallel", SYNAPSE_S3_CONCURRENCY="4")
    fd = os.open(tmp_path / "out", os.O_RDWR | os.O_CREAT, 0o644)
    t0 = time.monotonic()
    try:
        with pytest.raises(HTTPStatusError):
            download(fd, ObjectInfo(size=size), opener, st)
        alive = [t.name for t in threading.enumerate() if t.name == "synapse-fetch"]
    finally:
        os.close(fd)
    assert released.is_set() and alive == [] and time.monotonic() - t0 < 10
