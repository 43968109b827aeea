"""Events/s of our writer against structlog and python-json-logger, and start-up overhead.

Same process, same sink (/dev/null by default), same event shapes, best of N rounds:

* ``ctx.log(event, data)``: every call is written (no coalescing);
* ``ctx.set_progress(i, n)``: ours coalesces, so this measures the call cost a training loop pays;
* the peers: structlog's ``JSONRenderer`` with an ISO timestamp and level (as the structlog docs
  configure it), python-json-logger through ``logging``, and ``json.dumps`` of a dict per line.

Start-up: a noop ``synapse-runtime run`` (a function action importing nothing heavy) against
``python -c pass``, medians of N runs.

    python bench/events.py [--events 200000] [--rounds 3] [--startup-runs 10] [--sink /dev/null]
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def best_rate(fn: Callable[[int], None], n: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn(n)
        best = min(best, time.perf_counter() - t0)
    return n / best


def ours_log(sink: str) -> Callable[[int], None]:
    from synapse_runtime import EventLogger, RuntimeContext
    from synapse_runtime.events import EventWriter

    fd = os.open(sink, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    ctx = RuntimeContext(logger=EventLogger(EventWriter(fd, job_id="bench-job")))

    def run(n: int) -> None:
        log = ctx.log
        for i in range(n):
            log("step", {"i": i, "loss": 0.5, "phase": "train"})

    return run


def ours_progress(sink: str) -> Callable[[int], None]:
    from synapse_runtime import EventLogger, RuntimeContext
    from synapse_runtime.events import EventWriter

    fd = os.open(sink, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    writer = EventWriter(fd, job_id="bench-job")
    ctx = RuntimeContext(logger=EventLogger(writer))

    def run(n: int) -> None:
        sp = ctx.set_progress
        for i in range(n):
            sp(i + 1, n, "train")
        writer.flush_progress()

    return run


def structlog_writer(sink: str) -> Callable[[int], None] | None:
    try:
        import structlog
    except ImportError:
        return None
    f = open(sink, "w")  # noqa: SIM115
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.WriteLoggerFactory(file=f),
        cache_logger_on_first_use=True,
    )
    log = structlog.get_logger().bind(job_id="bench-job")

    def run(n: int) -> None:
        info = log.info
        for i in range(n):
            info("step", i=i, loss=0.5, phase="train")
        f.flush()

    return run


def jsonlogger_writer(sink: str) -> Callable[[int], None] | None:
    try:
        from pythonjsonlogger.json import JsonFormatter
    except ImportError:
        try:
            from pythonjsonlogger.jsonlogger import JsonFormatter  # type: ignore[no-redef]
        except ImportError:
            return None
    logger = logging.getLogger("bench.jsonlogger")
    logger.propagate = False
    handler = logging.StreamHandler(open(sink, "w"))  # noqa: SIM115
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(message)s"))
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)

    def run(n: int) -> None:
        for i in range(n):
            logger.info("step", extra={"i": i, "loss": 0.5, "phase": "train", "job_id": "bench-job"})
        handler.flush()

    return run


def json_dumps_writer(sink: str) -> Callable[[int], None]:
    from datetime import datetime, timezone

    f = open(sink, "w")  # noqa: SIM115

    def run(n: int) -> None:
        dumps, write = json.dumps, f.write
        for i in range(n):
            write(dumps({"ts": datetime.now(timezone.utc).isoformat(), "event": "step", "i": i, "loss": 0.5,
                         "phase": "train", "job_id": "bench-job"}) + "\n")
        f.flush()

    return run


def startup(runs: int) -> tuple[float, float, float]:
    plugin = ROOT / "plugins" / "faults"
    out = tempfile.mkdtemp(prefix="bench-out-")
    env = {**os.environ, "SYNAPSE_ENV_DIR": "", "SYNAPSE_SECRET_DIR": ""}

    def timed(cmd: list[str]) -> float:
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
        return time.perf_counter() - t0

    base_cmd = [sys.executable, "-c", "pass"]
    run_cmd = [sys.executable, "-m", "synapse_runtime", "run", "--plugin", str(plugin), "--action", "noop", "--output", out]
    # As installed (a wheel install byte-compiles; the image does at build time): compile once, so a host with
    # PYTHONDONTWRITEBYTECODE=1 and an editable install does not re-parse every module on every run.
    import compileall

    for tree in (ROOT / "synapse_runtime", plugin):
        compileall.compile_dir(str(tree), quiet=1)
    timed(base_cmd), timed(run_cmd)  # warm the page cache
    base = statistics.median(timed(base_cmd) for _ in range(runs))
    ours = statistics.median(timed(run_cmd) for _ in range(runs))
    return base, ours, ours - base


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--startup-runs", type=int, default=10)
    ap.add_argument("--sink", default=os.devnull)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = ap.parse_args()

    rows: list[tuple[str, float]] = []
    candidates = [
        ("synapse-runtime ctx.log", ours_log(args.sink)),
        ("synapse-runtime ctx.set_progress (coalesced)", ours_progress(args.sink)),
        ("structlog JSONRenderer (+iso ts, level)", structlog_writer(args.sink)),
        ("python-json-logger via logging", jsonlogger_writer(args.sink)),
        ("json.dumps per line (+iso ts)", json_dumps_writer(args.sink)),
    ]
    for name, fn in candidates:
        if fn is None:
            print(f"  {name}: not installed, skipped", file=sys.stderr)
            continue
        rows.append((name, best_rate(fn, args.events, args.rounds)))

    rates = dict(rows)
    ref = rates.get("structlog JSONRenderer (+iso ts, level)")
    print(f"\nEvents/s, {args.events} events to {args.sink}, best of {args.rounds} (Python {sys.version.split()[0]})")
    print(f"{'writer':48} {'events/s':>12} {'vs structlog':>13}")
    for name, rate in rows:
        ratio = f"{rate / ref:.2f}x" if ref else "-"
        print(f"{name:48} {rate:12,.0f} {ratio:>13}")

    base, ours, overhead = startup(args.startup_runs)
    print(f"\nStart-up, median of {args.startup_runs}: python -c pass {base * 1000:.0f} ms · "
          f"synapse-runtime run (noop) {ours * 1000:.0f} ms · overhead {overhead * 1000:.0f} ms (goal <= 150 ms)")
    if args.json:
        print(json.dumps({"events_per_s": rates, "startup": {"python_pass_s": base, "noop_run_s": ours,
                                                               "overhead_s": overhead}}))


if __name__ == "__main__":
    main()
