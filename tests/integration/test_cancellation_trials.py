"""Cancellation at random points, in containers: SIGTERM and SIGINT during a checkpoint fetch, an
action's execute, a workflow step and a rollback; then SIGKILL mid-fetch and a rerun that recovers.

The schedule is seeded (``SYNAPSE_CANCEL_SEED``) and sized by ``SYNAPSE_CANCEL_TRIALS`` (default 30)
and ``SYNAPSE_KILL_TRIALS`` (default 3). Each trial asserts the contract's cancellation promise:

* exit 143 (SIGTERM) or 130 (SIGINT), last event ``end`` with status ``cancelled``, result.json
  ``cancelled``, every stdout line valid JSON and schema-checked (``check_stream``);
* every step that started is rolled back, in reverse, each rollback begun *and* finished
  (rollback.jsonl), no ``*.marker`` left;
* signal → container exit under 5 s (host clock, around ``docker kill`` and ``docker wait``);
* spawn trials: the processes the action left (``spawned.pids``) are gone *before the runtime
  process exits*. The runtime container joins the PID namespace of a watcher container (as a
  Kubernetes pod with ``shareProcessNamespace`` would), whose PID-1 survives the run; the watcher
  polls /proc and logs when each process appears and disappears. Without this, the check would be
  vacuous: a container's processes all die with its PID 1, and containerd kills what is left in a
  shared namespace only *after* the runtime has exited;
* fetch trials: no file in the cache volume looks complete but isn't: a published entry's bytes
  hash to the source's sha256, nothing is left in ``tmp/``, no lock is held.

A summary (per phase: trials, ok, max signal→exit) is printed and, when
``SYNAPSE_RELIABILITY_REPORT_DIR`` is set, written to ``cancellation.json`` there.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import re
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.conftest import check_stream
from tests.integration.conftest import LABELS, SESSION_ID
from tests.secrets import register

pytestmark = pytest.mark.docker

register("testing-secret")

SEED = int(os.environ.get("SYNAPSE_CANCEL_SEED", "20261123"))
TRIALS = int(os.environ.get("SYNAPSE_CANCEL_TRIALS", "30"))
KILL_TRIALS = int(os.environ.get("SYNAPSE_KILL_TRIALS", "3"))
CKPT_MIB = int(os.environ.get("SYNAPSE_CANCEL_CHECKPOINT_MIB", "256"))
REPORT_DIR = os.environ.get("SYNAPSE_RELIABILITY_REPORT_DIR")
EXIT_LIMIT_S = 5.0
PHASES = ("fetch", "execute", "step", "rollback")
CODES = {"SIGTERM": 143, "SIGINT": 130}
CACHE = "/var/cache/synapse"
PYTHON = "/opt/synapse/venv/bin/python"


# --------------------------------------------------------------------------------------------------------
# The schedule.


@dataclass(frozen=True)
class Trial:
    index: int
    phase: str  # fetch | execute | step | rollback
    signal: str  # SIGTERM | SIGINT (the first signal: it decides the exit code)
    spawn: bool = False
    step: int = 0  # step: signal during this step; rollback/failure: the failing step
    fraction: float = 0.0  # fetch: signal once this share of the object is in
    delay: float = 0.0  # seconds after the trigger
    variant: str = ""  # rollback: "failure" (a step fails, one signal) | "second-signal"
    rollback_seconds: float = 0.0
    second_signal: str | None = None
    second_delay: float = 0.0

    @property
    def id(self) -> str:
        extra = f"-{self.variant}" if self.variant else ""
        return f"{self.index:02d}-{self.phase}{extra}-{self.signal}{'-spawn' if self.spawn else ''}"


def schedule(n: int, seed: int) -> list[Trial]:
    rng = random.Random(seed)
    per_phase: dict[str, int] = {}
    trials = []
    for i in range(n):
        phase = PHASES[i % len(PHASES)]
        k = per_phase.get(phase, 0)
        per_phase[phase] = k + 1
        # both signals in every phase: alternate, starting at random
        sig = ("SIGTERM", "SIGINT")[(k + (seed + len(phase)) % 2) % 2]
        if phase == "fetch":
            trials.append(Trial(i, phase, sig, spawn=rng.random() < 0.3, fraction=round(rng.uniform(0.0, 0.7), 3),
                                delay=round(rng.uniform(0, 0.1), 3)))
        elif phase == "execute":
            trials.append(Trial(i, phase, sig, delay=round(rng.uniform(0.2, 2.5), 3)))
        elif phase == "step":
            trials.append(Trial(i, phase, sig, spawn=rng.random() < 0.5, step=rng.randint(1, 3),
                                delay=round(rng.uniform(0, 1.8), 3)))
        else:
            variant = ("failure", "second-signal")[k % 2]
            r = round(rng.uniform(0.4, 0.9), 3)
            if variant == "failure":
                fail_at = rng.randint(2, 3)
                trials.append(Trial(i, phase, sig, spawn=rng.random() < 0.5, step=fail_at, variant=variant,
                                    rollback_seconds=r, delay=round(rng.uniform(0, 0.9 * r * fail_at), 3)))
            else:
                step = rng.randint(1, 3)
                trials.append(Trial(i, phase, sig, spawn=rng.random() < 0.5, step=step, variant=variant,
                                    rollback_seconds=r, delay=round(rng.uniform(0, 1.5), 3),
                                    second_signal=rng.choice(("SIGTERM", "SIGINT")),
                                    second_delay=round(rng.uniform(0, 0.9 * r), 3)))
    return trials


SCHEDULE = schedule(TRIALS, SEED)
OUTCOMES: list[dict[str, Any]] = []


# --------------------------------------------------------------------------------------------------------
# Fixtures: the checkpoint, the PID watcher, the summary.


@dataclass
class Checkpoint:
    uri: str
    size: int
    sha256: str
    basename: str


@pytest.fixture(scope="module")
def big_checkpoint(s3_server: Any) -> Checkpoint:
    """A random object big enough that fetching it from the moto container takes a few seconds."""
    from boto3.s3.transfer import TransferConfig

    size = CKPT_MIB << 20
    blob = os.urandom(size)
    digest = hashlib.sha256(blob).hexdigest()
    bucket = s3_server.create_bucket()
    s3_server.client().upload_fileobj(io.BytesIO(blob), bucket, "ckpt/big.bin",
                                      Config=TransferConfig(multipart_chunksize=32 << 20, max_concurrency=4))
    del blob
    return Checkpoint(f"s3://{bucket}/ckpt/big.bin", size, digest, "big.bin")


WATCHER = r"""
import json, os, sys, time
def scan():
    cur = {}
    for e in os.listdir('/proc'):
        if not e.isdigit():
            continue
        try:
            with open(f'/proc/{e}/stat', 'rb') as f:
                stat = f.read()
            fields = stat[stat.rfind(b')') + 2:].split()
            if fields[0] == b'Z':
                continue  # a zombie has stopped running
            with open(f'/proc/{e}/cmdline', 'rb') as f:
                cmd = f.read()
        except OSError:
            continue
        cur[int(e)] = (cmd, int(fields[1]))
    return cur
def kind(pid, cur):
    cmd, ppid = cur[pid]
    if cmd == b'sleep\x003600\x00':
        return 'sleep'
    argv = cmd.split(b'\x00')
    parent = cur.get(ppid, (b'', 0))[0]
    # the runtime: python running the entrypoint, started by the container's tini (not a fork of it)
    if len(argv) > 1 and argv[1] == b'/opt/synapse/entrypoint.py' and parent.startswith(b'tini'):
        return 'runtime'
    return None
seen = {}
print(json.dumps({'ready': True, 't': time.monotonic()}), flush=True)
while True:
    now = time.monotonic()
    cur = scan()
    for pid in cur:
        k = kind(pid, cur)
        if seen.get(pid) != k:
            if pid in seen:  # the same pid is something else now (exec)
                print(json.dumps({'pid': pid, 'kind': seen.pop(pid), 'event': 'gone', 't': now}), flush=True)
            if k:
                seen[pid] = k
                print(json.dumps({'pid': pid, 'kind': k, 'event': 'seen', 't': now}), flush=True)
    for pid in [p for p in seen if p not in cur]:
        print(json.dumps({'pid': pid, 'kind': seen.pop(pid), 'event': 'gone', 't': now}), flush=True)
    time.sleep(0.004)
"""


class PidWatcher:
    """A container that owns a PID namespace and logs when `sleep 3600` and runtime processes come and go."""

    def __init__(self, container: Any) -> None:
        self.container = container

    @property
    def pid_mode(self) -> str:
        return f"container:{self.container.id}"

    def records(self, since: float) -> list[dict[str, Any]]:
        out = []
        for line in self.container.logs(stdout=True, stderr=False).decode().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "pid" in rec and rec["t"] >= since:
                out.append(rec)
        return out


@pytest.fixture(scope="module")
def pid_watcher(docker_client: Any, runtime_image: str) -> Iterator[PidWatcher]:
    container = docker_client.containers.run(
        runtime_image, entrypoint=["tini", "--", PYTHON, "-c", WATCHER], detach=True, read_only=True,
        network_mode="none", labels=dict(LABELS), name=f"synapse-test-{SESSION_ID}-pidwatch-{uuid.uuid4().hex[:6]}",
    )
    try:
        deadline = time.monotonic() + 30
        while b"ready" not in container.logs() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert b"ready" in container.logs(), container.logs()[-2000:]
        yield PidWatcher(container)
    finally:
        container.remove(force=True, v=True)


def _terminal(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Write past pytest's output capture (a module fixture's teardown is captured otherwise)."""
    tr = request.config.pluginmanager.get_plugin("terminalreporter")
    capman = request.config.pluginmanager.get_plugin("capturemanager")
    if tr is None:
        return print

    def write(line: str) -> None:
        if capman is not None:
            with capman.global_and_fixture_disabled():
                tr.write_line(line)
        else:
            tr.write_line(line)

    return write


def summarize(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    phases: dict[str, dict[str, Any]] = {}
    for o in outcomes:
        p = phases.setdefault(o["phase"], {"trials": 0, "ok": 0, "max_signal_to_exit_s": 0.0, "landed": {},
                                           "signals": {}, "spawn": 0})
        p["trials"] += 1
        p["ok"] += int(o["ok"])
        if o.get("signal_to_exit_s") is not None:
            p["max_signal_to_exit_s"] = max(p["max_signal_to_exit_s"], round(o["signal_to_exit_s"], 3))
        if o.get("landed"):
            p["landed"][o["landed"]] = p["landed"].get(o["landed"], 0) + 1
        p["signals"][o["signal"]] = p["signals"].get(o["signal"], 0) + 1
        p["spawn"] += int(bool(o.get("spawn")))
    return {"seed": SEED, "trials": sum(p["trials"] for p in phases.values()),
            "ok": sum(p["ok"] for p in phases.values()), "phases": phases}


@pytest.fixture(scope="module", autouse=True)
def _report(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if not OUTCOMES:
        return
    summary = summarize(OUTCOMES)
    write = _terminal(request)
    write("")
    write(f"cancellation trials (seed {SEED}): {summary['ok']}/{summary['trials']} ok")
    for name, p in summary["phases"].items():
        write(f"  {name:<9} trials {p['trials']:>2}  ok {p['ok']:>2}  max signal->exit {p['max_signal_to_exit_s']:.2f} s"
              f"  landed {p['landed']}  signals {p['signals']}  spawn {p['spawn']}")
    if REPORT_DIR:
        Path(REPORT_DIR).mkdir(parents=True, exist_ok=True)
        (Path(REPORT_DIR) / "cancellation.json").write_text(json.dumps({**summary, "outcomes": OUTCOMES}, indent=1))


# --------------------------------------------------------------------------------------------------------
# Helpers.


INSPECT = r"""
import fcntl, hashlib, json, os, sys
root, want = sys.argv[1], int(sys.argv[2])
def sha(p):
    h = hashlib.sha256()
    with open(p, 'rb') as f:
        while b := f.read(4 << 20):
            h.update(b)
    return h.hexdigest()
files, locks = [], {}
for dp, dns, fns in os.walk(root):
    for fn in fns:
        p = os.path.join(dp, fn)
        rel = os.path.relpath(p, root)
        st = os.lstat(p)
        item = {'path': rel, 'size': st.st_size}
        if st.st_size == want or (rel.startswith('objects/') and not fn.endswith('.json')):
            item['sha256'] = sha(p)
        files.append(item)
for fn in sorted(os.listdir(os.path.join(root, 'locks')) if os.path.isdir(os.path.join(root, 'locks')) else []):
    fd = os.open(os.path.join(root, 'locks', fn), os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        locks[fn] = False
    except BlockingIOError:
        locks[fn] = True
    finally:
        os.close(fd)
print(json.dumps({'files': files, 'locks': locks}))
"""


def inspect_cache(docker_client: Any, runtime_image: str, volume: str, size: int) -> dict[str, Any]:
    """The cache volume as another container sees it: files (sha256 of anything object-sized), held locks."""
    # Not remove=True: the SDK then removes the container without its anonymous volumes (/mnt/output here).
    container = docker_client.containers.run(
        runtime_image, entrypoint=[PYTHON, "-c", INSPECT, CACHE, str(size)], detach=True, read_only=True,
        network_mode="none", labels=dict(LABELS), volumes={volume: {"bind": CACHE, "mode": "ro"}},
    )
    try:
        status = container.wait(timeout=120)
        out = container.logs(stdout=True, stderr=False)
        assert status["StatusCode"] == 0, container.logs()[-2000:]
    finally:
        container.remove(force=True, v=True)
    return json.loads(out.decode().strip().splitlines()[-1])


def check_cache(listing: dict[str, Any], ckpt: Checkpoint, *, tmp_may_hold: bool = False) -> dict[str, Any]:
    """Nothing looks complete that isn't; returns facts for the outcome record."""
    published = [f for f in listing["files"] if f["path"].startswith("objects/") and f["path"].endswith("/" + ckpt.basename)]
    for f in published:
        assert f["size"] == ckpt.size and f["sha256"] == ckpt.sha256, f"a published cache entry is not the object: {f}"
        meta = f["path"].rsplit("/", 1)[0] + "/meta.json"
        assert any(g["path"] == meta for g in listing["files"]), f"entry without meta.json: {listing}"
    for f in listing["files"]:
        if f.get("sha256") is not None and f["size"] == ckpt.size and not f["path"].startswith("objects/"):
            # a full-sized file outside objects/: the preallocated temp of a killed download
            assert tmp_may_hold and f["path"].startswith("tmp/"), f"object-sized file outside the cache's tmp/: {f}"
    tmp = [f for f in listing["files"] if f["path"].startswith("tmp/")]
    if not tmp_may_hold:
        assert not tmp, f"temp files left after a graceful cancel: {tmp}"
    held = [name for name, is_held in listing["locks"].items() if is_held]
    assert not held, f"locks still held with no process running: {held}"
    return {"published": len(published), "tmp_files": len(tmp),
            "tmp_complete_looking": sum(1 for f in tmp if f["size"] == ckpt.size)}


def poll_until(check: Callable[[], Any], running: Any, timeout: float, what: str, poll: float = 0.03) -> Any:
    deadline = time.monotonic() + timeout
    n = 0
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        n += 1
        if n % 10 == 0:
            running.container.reload()
            if running.container.status == "exited":
                break
        time.sleep(poll)
    raise AssertionError(f"{what}: not seen within {timeout}s; stdout tail:\n{running.stdout_so_far()[-3000:]}")


def events_now(running: Any) -> list[dict[str, Any]]:
    return running.events_so_far()


def rollback_lines(out: Path) -> list[dict[str, Any]]:
    path = out / "rollback.jsonl"
    if not path.exists():
        return []
    lines = []
    for line in path.read_text().splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            pass  # a line being written right now
    return lines


def wait_exit(running: Any, timeout: float = 60) -> float:
    """Blocks until the container exited; returns the host's monotonic time then."""
    running.container.wait(timeout=timeout)
    return time.monotonic()


STOPPED = re.compile(r"stopped (\d+) process\(es\) the action left running \(pids ([\d, ]+)\)")


def check_cancelled_run(run: Any, trial: Trial) -> dict[str, Any]:
    """The per-trial contract; returns facts for the outcome record."""
    check_stream(run)
    assert not run.extra["bad_lines"], run.extra["bad_lines"][:5]
    code = CODES[trial.signal]
    assert run.exit_code == code, (run.exit_code, run.events[-3:], run.stderr[-2000:])
    assert run.end["type"] == "end" and run.end["status"] == "cancelled" and run.end["exit_code"] == code
    assert run.error is not None and run.error["error_type"] == "Cancelled"
    assert run.error["details"]["signal"] == trial.signal
    assert run.result is not None and run.result["status"] == "cancelled" and run.result["exit_code"] == code
    out = run.output_dir
    # Every step that started (a `step` event: succeeded, failed, cancelled) is rolled back, the last first.
    started = [e["data"]["name"] for e in run.events if e["type"] == "event" and e.get("event") == "step"]
    lines = rollback_lines(out)
    begun = [x["step"] for x in lines if x.get("phase") == "begin"]
    finished = [x["step"] for x in lines if "phase" not in x]
    expected = list(reversed(started))
    assert begun == expected and finished == expected, {"started": started, "rollback.jsonl": lines}
    rolled_events = [e["data"]["name"] for e in run.events if e["type"] == "event" and e.get("event") == "rollback"]
    assert rolled_events == expected, rolled_events
    markers = sorted(p.name for p in out.glob("*.marker"))
    assert not markers, f"markers left after rollback: {markers}"
    return {"steps_started": len(started), "rolled_back": finished}


def check_spawned_stopped(run: Any, watcher: PidWatcher, since: float) -> dict[str, Any]:
    """What the action spawned was stopped by the runtime, before the runtime itself exited."""
    pids_file = run.output_dir / "spawned.pids"
    spawned = [int(x) for x in pids_file.read_text().split()] if pids_file.exists() else []
    if not spawned:
        return {"spawned": 0}
    messages = [e["message"] for e in run.of_type("message") if "left running" in e.get("message", "")]
    assert messages, f"no 'stopped N process(es)' warning although {spawned} were spawned"
    m = STOPPED.search(messages[-1])
    assert m, messages
    stopped = {int(x) for x in m.group(2).replace(" ", "").split(",") if x}
    assert set(spawned) <= stopped, (spawned, stopped)
    deadline = time.monotonic() + 5
    while True:  # the watcher polls every few ms: give its log a moment to catch up
        recs = watcher.records(since)
        runtime = [r for r in recs if r["kind"] == "runtime"]
        runtime_gone = [r["t"] for r in runtime if r["event"] == "gone"]
        gone = {r["pid"]: r["t"] for r in recs if r["kind"] == "sleep" and r["event"] == "gone"}
        if runtime_gone and set(spawned) <= set(gone) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    seen = {r["pid"] for r in recs if r["kind"] == "sleep" and r["event"] == "seen"}
    assert set(spawned) <= seen, f"watcher never saw {set(spawned) - seen} (not in the shared PID namespace?)"
    assert len({r["pid"] for r in runtime}) == 1, runtime
    assert runtime_gone, f"watcher did not see the runtime exit: {runtime}"
    left = [p for p in spawned if p not in gone]
    assert not left, f"spawned processes outlived the run: {left}"
    late = {p: round(gone[p] - runtime_gone[0], 4) for p in spawned if gone[p] >= runtime_gone[0]}
    assert not late, f"spawned processes were still running when the runtime exited (s after): {late}"
    return {"spawned": len(spawned), "stopped_before_exit_s": round(min(runtime_gone[0] - gone[p] for p in spawned), 4)}


# --------------------------------------------------------------------------------------------------------
# The trials.


@pytest.mark.parametrize("trial", SCHEDULE, ids=[t.id for t in SCHEDULE])
def test_cancellation_trial(trial: Trial, run_image: Any, s3_server: Any, big_checkpoint: Checkpoint,
                            docker_volume: Any, docker_client: Any, runtime_image: str, pid_watcher: PidWatcher) -> None:
    outcome: dict[str, Any] = {**asdict(trial), "ok": False, "signal_to_exit_s": None, "landed": None}
    OUTCOMES.append(outcome)
    env: dict[str, str] = {"SYNAPSE_PROGRESS_INTERVAL": "0.05"}
    kwargs: dict[str, Any] = {}
    if trial.spawn:
        # Join the watcher's PID namespace; tini, no longer PID 1 here, still adopts orphans (TINI_SUBREAPER).
        kwargs["pid_mode"] = pid_watcher.pid_mode
        env["TINI_SUBREAPER"] = "1"
    cache = None
    if trial.phase == "fetch":
        cache = docker_volume()
        env.update({**s3_server.container_env(), "SYNAPSE_CHECKPOINT": big_checkpoint.uri})
        kwargs.update(network=s3_server.network, volumes={cache: {"bind": CACHE, "mode": "rw"}})
    if trial.phase == "execute":
        action, params = "flood", {"rate": 1000, "seconds": 60}
    elif trial.phase == "rollback" and trial.variant == "failure":
        action, params = "slow", {"seconds": 3.0, "steps": 3, "fail_at": trial.step,
                                  "rollback_seconds": trial.rollback_seconds, "spawn": trial.spawn}
    else:
        action, params = "slow", {"seconds": 6.0, "steps": 3, "rollback_seconds": trial.rollback_seconds,
                                  "spawn": trial.spawn}

    since = time.monotonic()
    running = run_image.start(plugin="faults", action=action, params=params, env=env, termination_log=True, **kwargs)
    out = running.output_dir
    second_at = None
    if trial.phase == "fetch":
        def fetched_share() -> float | None:
            downloads = [e for e in events_now(running) if e["type"] == "download"]
            if downloads and downloads[-1]["total"]:
                share = downloads[-1]["bytes"] / downloads[-1]["total"]
                return share if share >= trial.fraction or share >= 1 else None
            return None

        poll_until(fetched_share, running, 90, f"download progress {trial.fraction:.0%}")
        time.sleep(trial.delay)
    elif trial.phase == "execute":
        poll_until(lambda: any(e["type"] == "start" for e in events_now(running)), running, 60, "start")
        time.sleep(trial.delay)
    elif trial.phase == "step" or trial.variant == "second-signal":
        name = f"step{trial.step}"
        poll_until(lambda: any(e["type"] == "progress" and e.get("category") == name for e in events_now(running)),
                   running, 60, f"{name} running")
        time.sleep(trial.delay)
    else:  # rollback after a step failure: signal while it runs
        poll_until(lambda: any(x.get("phase") == "begin" for x in rollback_lines(out)), running, 60, "rollback begun")
        time.sleep(trial.delay)

    before = events_now(running)
    t_signal = time.monotonic()
    running.kill(trial.signal)
    if trial.second_signal:
        poll_until(lambda: any(x.get("phase") == "begin" for x in rollback_lines(out)), running, 10, "rollback begun")
        time.sleep(trial.second_delay)
        second_at = rollback_lines(out)
        try:
            running.kill(trial.second_signal)
        except Exception:  # noqa: BLE001 - the run may be over already (rollback of one short step)
            second_at = None
    t_exit = wait_exit(running, timeout=60)
    outcome["signal_to_exit_s"] = round(t_exit - t_signal, 3)
    run = running.wait(timeout=10)

    # Where the signal landed, from what the stream said just before it.
    steps_before = [e for e in before if e["type"] == "progress" and (e.get("category") or "").startswith("step")]
    downloads = [e for e in before if e["type"] == "download"]
    if trial.phase == "fetch" and not (downloads and downloads[-1]["bytes"] >= downloads[-1]["total"]):
        outcome["landed"] = "fetch"
    elif trial.phase == "rollback" and trial.variant == "failure":
        outcome["landed"] = "rollback"
    elif steps_before:
        outcome["landed"] = steps_before[-1]["category"]
    else:
        outcome["landed"] = "execute" if trial.phase == "execute" else "before-steps"
    if second_at is not None:
        outcome["second_signal_during_rollback"] = not any(
            x.get("phase") is None for x in second_at if x["step"] == "step1")

    outcome.update(check_cancelled_run(run, trial))
    if trial.phase == "rollback" and trial.variant == "failure":
        assert outcome["steps_started"] == trial.step
    assert outcome["signal_to_exit_s"] < EXIT_LIMIT_S, f"signal -> exit took {outcome['signal_to_exit_s']} s"
    if trial.spawn:
        outcome.update(check_spawned_stopped(run, pid_watcher, since))
    if cache is not None:
        outcome.update(check_cache(inspect_cache(docker_client, runtime_image, cache, big_checkpoint.size), big_checkpoint))
    term = json.loads(run.extra["termination_message"])
    assert term["status"] == "cancelled" and term["exit_code"] == CODES[trial.signal]
    outcome["ok"] = True


# --------------------------------------------------------------------------------------------------------
# SIGKILL mid-fetch, then recovery on the same cache volume.


KILLS = [("concurrent", "rerun")[i % 2] for i in range(KILL_TRIALS)]


@pytest.mark.parametrize("index,variant", list(enumerate(KILLS)), ids=[f"{i:02d}-{v}" for i, v in enumerate(KILLS)])
def test_sigkill_mid_fetch_then_recovery(index: int, variant: str, run_image: Any, s3_server: Any,
                                         big_checkpoint: Checkpoint, docker_volume: Any, docker_client: Any,
                                         runtime_image: str) -> None:
    """SIGKILL the downloader (no handler runs: its temp file and lock file stay behind). `concurrent`: a
    second container on the same volume, already waiting for the lock, takes over; `rerun`: a new run
    afterwards. Either way the survivor verifies the checkpoint (sha256) and cleans the dead one's temp."""
    rng = random.Random(SEED * 1000 + index)
    outcome: dict[str, Any] = {"index": index, "phase": "sigkill-fetch", "signal": "SIGKILL", "variant": variant, "ok": False,
                               "signal_to_exit_s": None, "landed": None}
    OUTCOMES.append(outcome)
    cache = docker_volume()
    env = {**s3_server.container_env(), "SYNAPSE_CHECKPOINT": big_checkpoint.uri,
           "SYNAPSE_CHECKPOINT_SHA256": big_checkpoint.sha256, "SYNAPSE_PROGRESS_INTERVAL": "0.05",
           # 32 ranged GETs one after another (moto re-reads the object for each): a fetch of a few seconds,
           # so the kill lands inside it however fast one stream would be
           "SYNAPSE_S3_STRATEGY": "parallel", "SYNAPSE_S3_CONCURRENCY": "1", "SYNAPSE_S3_PART_SIZE": str(8 << 20)}
    common = dict(plugin="faults", action="noop", env=env, network=s3_server.network,
                  volumes={cache: {"bind": CACHE, "mode": "rw"}})
    starts = [run_image.start(**common) for _ in range(2 if variant == "concurrent" else 1)]

    def downloader() -> Any:
        for s in starts:
            if any(e["type"] == "download" and e["bytes"] > 0 for e in events_now(s)):
                return s
        return None

    victim = poll_until(downloader, starts[0], 90, "a download")
    waiter = next((s for s in starts if s is not victim), None)
    fraction = rng.uniform(0.15, 0.7)
    if waiter is not None:  # it started with the victim: by now it waits for the key's lock
        poll_until(lambda: any(e["type"] == "start" for e in events_now(waiter)), waiter, 60, "waiter start")
    poll_until(lambda: (d := [e for e in events_now(victim) if e["type"] == "download"]) and
               d[-1]["bytes"] >= fraction * d[-1]["total"], victim, 60, "download progress")
    before = [e for e in events_now(victim) if e["type"] == "download"]
    t_signal = time.monotonic()
    victim.kill("SIGKILL")
    outcome["signal_to_exit_s"] = round(wait_exit(victim, 30) - t_signal, 3)
    killed = victim.wait(timeout=10)
    assert killed.exit_code == 137
    outcome["landed"] = "fetch" if before[-1]["bytes"] < before[-1]["total"] else "after-fetch"
    outcome["killed_at_share"] = round(before[-1]["bytes"] / before[-1]["total"], 3)
    if waiter is not None:
        outcome["waiter_downloads_before_kill"] = len([e for e in events_now(waiter) if e["type"] == "download"])

    if waiter is None:
        left = inspect_cache(docker_client, runtime_image, cache, big_checkpoint.size)
        stale = check_cache(left, big_checkpoint, tmp_may_hold=True)
        outcome["stale_after_kill"] = stale
        if outcome["landed"] == "fetch":
            assert stale["published"] == 0 and stale["tmp_files"] >= 1, left  # the dead run's garbage is there
        survivor = run_image.start(**common)
    else:
        survivor = waiter
    run = survivor.wait(timeout=120)
    check_stream(run)
    assert not run.extra["bad_lines"]
    assert run.exit_code == 0, (run.events[-3:], run.stderr[-2000:])
    last = run.of_type("download")[-1]
    assert last["bytes"] == last["total"] == big_checkpoint.size, (run.of_type("download")[-3:], run.stderr[-2000:])
    if outcome["landed"] == "fetch":
        assert last["cached"] is False  # it downloaded the object itself: the dead one's bytes were not used
    after = inspect_cache(docker_client, runtime_image, cache, big_checkpoint.size)
    facts = check_cache(after, big_checkpoint)  # tmp/ empty, no lock held, the entry verifies
    assert facts["published"] == 1
    outcome["after_recovery"] = facts
    outcome["ok"] = True
