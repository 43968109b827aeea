"""Load: 10 000 events/s from an action for a sustained period; memory flat, nothing dropped.

The duration is SYNAPSE_LOAD_SECONDS (default 60, the goal in docs/reliability.md); CI runs
the full minute.  Marked slow: `pytest -m "not slow"` leaves it out of quick local runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import PLUGINS, event_validator

pytestmark = pytest.mark.slow
SECONDS = float(os.environ.get("SYNAPSE_LOAD_SECONDS", "60"))
RATE = 10_000


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def test_sustained_10k_events_per_second(tmp_path: Path) -> None:
    env = {**os.environ, "SYNAPSE_ENV_DIR": "", "SYNAPSE_SECRET_DIR": "",
           "SYNAPSE_ACTION_PARAMS": json.dumps({"rate": RATE, "seconds": SECONDS, "progress_every": 10})}
    proc = subprocess.Popen([sys.executable, "-m", "synapse_runtime", "--plugin", str(PLUGINS / "faults"),
                             "--action", "flood", "--output", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    samples: list[tuple[float, int]] = []
    t0 = time.monotonic()

    def sample() -> None:
        while proc.poll() is None:
            kib = rss_kib(proc.pid)
            if kib:
                samples.append((time.monotonic() - t0, kib))
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    counts: dict[str, int] = {}
    ticks = 0
    last_seq = -1
    last_tick = -1
    progress_per_second: dict[int, int] = {}
    first = last = None
    for raw in proc.stdout:
        e = json.loads(raw)
        assert e["seq"] == last_seq + 1, "a line was lost"
        last_seq = e["seq"]
        counts[e["type"]] = counts.get(e["type"], 0) + 1
        if e["type"] == "event":
            assert e["data"]["i"] == last_tick + 1
            last_tick = e["data"]["i"]
            ticks += 1
        elif e["type"] == "progress":
            second = int(time.monotonic() - t0)
            progress_per_second[second] = progress_per_second.get(second, 0) + 1
            last = e
            first = first or e
        elif e["type"] in ("start", "end", "result"):
            assert not list(event_validator().iter_errors(e))
    proc.wait(timeout=60)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr.read()
    total = int(RATE * SECONDS)
    assert ticks == total  # every event written, none dropped
    assert last["current"] == total and last["percent"] == 100.0  # the final state survives coalescing
    assert max(progress_per_second.values()) <= 8  # coalesced: a few lines a second, not 1000
    assert elapsed < SECONDS * 1.5 + 5, f"could not sustain {RATE}/s: {elapsed:.1f}s for {SECONDS}s of events"
    steady = [kib for t, kib in samples if t > min(5.0, SECONDS / 3)]
    assert steady, samples
    growth_mib = (max(steady) - min(steady)) / 1024
    print(f"\nload: {ticks} events in {elapsed:.1f}s; RSS {min(steady) / 1024:.1f}..{max(steady) / 1024:.1f} MiB; "
          f"progress lines {counts.get('progress')}")
    assert growth_mib < 10, f"memory grew by {growth_mib:.1f} MiB under load"
