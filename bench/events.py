"""Events/s of our writer against structlog and python-json-logger, and start-up overhead.

Same process, same sink (/dev/null by default), same event shapes, best of N rounds:

* ``ctx.log(event, data)``: every call is written (no coalescing);
* ``ctx.set_progress(i, n)`` and ``BaseAction.set_progress(i, n)``: ours coalesces, so this measures
  the call cost a training loop pays (goal: >= 1,000,000 calls/s through ``BaseAction``);
* ``BaseAction.set_metrics``: every call is written (merged metrics of one step);
* the peers: structlog's ``JSONRenderer`` with an ISO timestamp and level (as the structlog docs
  configure it), python-json-logger through ``logging``, and ``json.dumps`` of a dict per line.

Rates are per second of the process's CPU time (``time.process_time``) by default: on a shared host
wall time measures the neighbours; ``--clock wall`` uses ``perf_counter``.

Start-up: a noop ``synapse-runtime run`` (a function action importing nothing heavy) against
``python -c pass``, medians of N runs, wall time and the child's CPU time (user + system), and the
runtime's import share (``import synapse_runtime.cli, synapse_runtime.contract.runner`` alone).

    python bench/events.py [--events 200000] [--rounds 3] [--startup-runs 10] [--sink /dev/null] [--clock cpu|wall]
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


CLOCK: Callable[[], float] = time.process_time


def best_rate(fn: Callable[[int], None], n: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = CLOCK()
        fn(n)
        best = min(best, CLOCK() - t0)
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


def ours_action(sink: str, what: str) -> Callable[[int], None]:
    """Through ``BaseAction``: action -> ctx -> logger -> writer, as an action's own loop calls it."""
    from synapse_runtime import BaseAction, EventLogger, RuntimeContext
    from synapse_runtime.events import EventWriter

    class Train(BaseAction):
        def execute(self) -> None:
            return None

    fd = os.open(sink, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    writer = EventWriter(fd, job_id="bench-job")
    action = Train(None, RuntimeContext(logger=EventLogger(writer)))

    def progress(n: int) -> None:
        sp = action.set_progress
        for i in range(n):
            sp(i + 1, n, "train")
        writer.flush_progress()

    def metrics(n: int) -> None:
        sm = action.set_metrics
        for i in range(n):
            sm({"loss": 0.5, "step": i}, "train")

    return progress if what == "progress" else metrics


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


def startup(runs: int) -> dict[str, tuple[float, float]]:
    """``{what: (median wall s, median child CPU s)}`` for python -c pass, the imports alone, and a noop run."""
    import resource

    plugin = ROOT / "plugins" / "faults"
    out = tempfile.mkdtemp(prefix="bench-out-")
    # This checkout's package, whatever is installed (``-m`` would also put the working directory first).
    env = {**os.environ, "SYNAPSE_ENV_DIR": "", "SYNAPSE_SECRET_DIR": "",
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}

    def timed(cmd: list[str]) -> tuple[float, float]:
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True, cwd=out)
        wall = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)

    cmds = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "import cli + runner": [sys.executable, "-c", "import synapse_runtime.cli, synapse_runtime.contract.runner"],
        "synapse-runtime run (noop)": [sys.executable, "-m", "synapse_runtime", "run", "--plugin", str(plugin),
                                       "--action", "noop", "--output", out],
    }
    # As installed (a wheel install byte-compiles; the image does at build time): compile once, so a host with
    # PYTHONDONTWRITEBYTECODE=1 and an editable install does not re-parse every module on every run.
    import compileall

    for tree in (ROOT / "synapse_runtime", plugin):
        compileall.compile_dir(str(tree), quiet=1)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in cmds}
    for cmd in cmds.values():
        timed(cmd)  # warm the page cache
    for _ in range(runs):  # interleaved, so that a busy moment of the host hits all alike
        for name, cmd in cmds.items():
            samples[name].append(timed(cmd))
    return {name: (statistics.median(w for w, _ in s), statistics.median(c for _, c in s)) for name, s in samples.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--startup-runs", type=int, default=10)
    ap.add_argument("--sink", default=os.devnull)
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu", help="what a rate is per second of")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = ap.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter

    rows: list[tuple[str, float]] = []
    candidates = [
        ("synapse-runtime ctx.log", ours_log(args.sink)),
        ("synapse-runtime ctx.set_progress (coalesced)", ours_progress(args.sink)),
        ("synapse-runtime BaseAction.set_progress (coalesced)", ours_action(args.sink, "progress")),
        ("synapse-runtime BaseAction.set_metrics", ours_action(args.sink, "metrics")),
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
    print(f"\nEvents/s of {args.clock} time, {args.events} events to {args.sink}, best of {args.rounds} "
          f"(Python {sys.version.split()[0]})")
    print(f"{'writer':52} {'events/s':>12} {'vs structlog':>13}")
    for name, rate in rows:
        ratio = f"{rate / ref:.2f}x" if ref else "-"
        print(f"{name:52} {rate:12,.0f} {ratio:>13}")
    action_rate = rates.get("synapse-runtime BaseAction.set_progress (coalesced)", 0.0)
    print(f"BaseAction.set_progress: {action_rate:,.0f}/s (goal >= 1,000,000/s)")

    figures = startup(args.startup_runs)
    base_wall, base_cpu = figures["python -c pass"]
    print(f"\nStart-up, median of {args.startup_runs} (wall ms / child CPU ms):")
    for name, (wall, cpu) in figures.items():
        print(f"  {name:30} {wall * 1000:6.0f} / {cpu * 1000:4.0f}   overhead {(wall - base_wall) * 1000:5.0f} / "
              f"{(cpu - base_cpu) * 1000:4.0f}")
    run_wall, run_cpu = figures["synapse-runtime run (noop)"]
    print(f"noop run overhead over python -c pass: {(run_wall - base_wall) * 1000:.0f} ms wall, "
          f"{(run_cpu - base_cpu) * 1000:.0f} ms CPU (goal <= 150 ms)")
    if args.json:
        print(json.dumps({"events_per_s": rates, "clock": args.clock,
                          "startup": {name: {"wall_s": w, "cpu_s": c} for name, (w, c) in figures.items()}}))


if __name__ == "__main__":
    main()
