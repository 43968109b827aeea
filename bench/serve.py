#!/usr/bin/env python3
"""Serving benchmark: ``synapse-runtime serve`` (shim and real-package mode) against plain uvicorn and Ray Serve.

The same trivial model everywhere: a weighted sum over a 4-value vector, ``POST /`` with
``{"values": [...]}``. Ours serves an upstream-style deployment (a ``BaseServeDeployment`` whose
FastAPI routes take ``self``, the model chosen per request by upstream's JWT in the
``serve_multiplexed_model_id`` header, loaded once through the registry file and the shared cache);
plain uvicorn serves the same FastAPI app with a module-level route; Ray Serve 2.50 serves an
equivalent ``@serve.ingress`` deployment with ``@serve.multiplexed`` (installed by this script with
uv into ``build/servebench/ray``). The load generator is wrk on loopback (one thread, so that the
server keeps most of the CPU), else an async httpx client in its own process.

Per server: time from the process start to the first 200 answer, RSS of the whole process tree
(idle after that answer, and the peak under load), and per concurrency requests/s, p50, p99.
Rounds are paired (every server once per round, order rotated); tables show medians over rounds
and ratios of medians. Ray runs in its own phase (its idle daemons would load the others' runs).
A last phase compares ``serve_options.batch`` on and off for a batch-friendly model (a 2048x2048
float32 mat-vec per item; one matmul per batch), one BLAS thread.

The two costs an earlier run of this bench found are fixed in the code it measures: TCP_NODELAY on
accepted connections (``serve/server.py`` ``_bind``; without it a keep-alive client waited ~40 ms per
answer) and the model token verified once per token (``serve/models.py`` ``verified_tokens``); the
tests in ``tests/serve/test_fast_paths.py`` guard both.

    .venv/bin/python bench/serve.py --duration 5            # real-package rows from .venv-sdk (make sdk-venv)
    .venv/bin/python bench/serve.py --only ours-shim,uvicorn --concurrency 1,16 --rounds 1 --skip-ray
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "servebench"
UV = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
BACKEND = "http://backend.bench/"
WEIGHTS = [0.5, -1.0, 2.0, 0.25]
BODY = {"values": [1.0, 2.0, 3.0, 4.0]}
EXPECTED = sum(w * x for w, x in zip(WEIGHTS, BODY["values"]))
SERVE_DEPS = ["fastapi<=0.136", "uvicorn", "PyJWT", "httpx"]  # the image's serve extra (no uvloop/httptools)
RAY_DEPS = ["ray[serve]==2.50.*", "protobuf<7", "fastapi<=0.136"]  # issue 20: the pins Ray 2.50 needs
THREADS_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

PLUGIN = '''
import json
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from synapse_sdk.plugins import BaseServeDeployment

app = FastAPI()


class Inp(BaseModel):
    values: list[float]


class WeightedSum(BaseServeDeployment):
    async def _get_model(self, model_info: dict[str, Any]) -> Any:
        return json.loads((Path(model_info["path"]) / "weights.json").read_text())

    @app.post("/")
    async def infer(self, data: Inp) -> dict[str, float]:
        weights = await self.get_model()
        return {"prediction": sum(w * x for w, x in zip(weights, data.values))}
'''

MATVEC = '''
from typing import Any

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

from synapse_sdk.plugins import BaseServeDeployment

app = FastAPI()
W = np.random.default_rng(0).standard_normal((2048, 2048), dtype=np.float32)


class Inp(BaseModel):
    values: list[float]


class MatVec(BaseServeDeployment):
    """Batch-friendly: one item reads all 16 MiB of weights; a batch reads them once for all items."""

    async def _get_model(self, model_info: dict[str, Any]) -> Any:
        return W  # module-level weights: no model header needed

    @app.post("/")
    async def infer(self, data: Inp) -> Any:
        return await self.infer_batch(data.values)

    async def infer_batch(self, requests: Any) -> Any:
        single = not isinstance(requests[0], list)  # batching off: the bare item
        x = np.resize(np.asarray([requests] if single else requests, dtype=np.float32), (1 if single else len(requests), 2048))
        out = [{"prediction": float(v)} for v in (x @ W.T).sum(axis=1)]
        return out[0] if single else out
'''

PLAIN = f'''
from fastapi import FastAPI
from pydantic import BaseModel

WEIGHTS = {WEIGHTS!r}
app = FastAPI()


class Inp(BaseModel):
    values: list[float]


@app.post("/")
async def infer(data: Inp) -> dict[str, float]:
    return {{"prediction": sum(w * x for w, x in zip(WEIGHTS, data.values))}}
'''

RAY_APP = f'''
import signal, sys
import ray
from fastapi import FastAPI
from pydantic import BaseModel
from ray import serve

WEIGHTS = {WEIGHTS!r}
app = FastAPI()


class Inp(BaseModel):
    values: list[float]


@serve.deployment(max_ongoing_requests=64)
@serve.ingress(app)
class WeightedSum:
    @serve.multiplexed(max_num_models_per_replica=3)
    async def get_model(self, model_id: str):
        return WEIGHTS

    @app.post("/")
    async def infer(self, data: Inp) -> dict:
        weights = await self.get_model(serve.get_multiplexed_model_id())
        return {{"prediction": sum(w * x for w, x in zip(weights, data.values))}}


ray.init(include_dashboard=False, log_to_driver=False)
serve.start(http_options={{"host": "127.0.0.1", "port": int(sys.argv[1])}})
serve.run(WeightedSum.bind(), name="bench", route_prefix="/")
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
signal.pause()
'''

# appended (not prepended) to sys.path: the venv's own packages (pydantic, click...) win where present
BOOT_OURS = "import sys, runpy\nsys.path.append(sys.argv.pop(1))\nrunpy.run_module('synapse_runtime', run_name='__main__')"
BOOT_UVICORN = ("import sys; sys.path.append(sys.argv[1]); sys.path.insert(0, '.'); import uvicorn; "
                "uvicorn.run('plain_app:app', host='127.0.0.1', port=int(sys.argv[2]), access_log=False, log_level='warning')")


def jwt_hs256(payload: dict[str, Any], key: str) -> str:
    """Upstream's model header (``create_serve_multiplexed_model_id``), written without PyJWT."""
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(payload).encode())
    return head + "." + b64(hmac.new(key.encode(), head.encode(), hashlib.sha256).digest())


TOKEN = jwt_hs256({"model": "1", "token": "bench-user-token"}, BACKEND)


def sh(cmd: list[str], **kw: Any) -> None:
    print("$", " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, **kw)


def overlay(python: str, tag: str) -> Path:
    """The serve extra for an interpreter whose venv lacks it, in a folder appended to sys.path."""
    target = WORK / f"deps-{tag}"
    if not (target / ".done").exists():
        sh([UV, "pip", "install", "-q", "--python", python, "--target", str(target), *SERVE_DEPS])
        (target / ".done").write_text("")
    return target


def ray_python() -> str:
    venv = WORK / "ray"
    if not (venv / ".done").exists():
        sh([UV, "venv", "-q", str(venv), "--python", sys.executable])
        sh([UV, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), *RAY_DEPS])
        (venv / ".done").write_text("")
    return str(venv / "bin" / "python")


def write_fixtures() -> Path:
    plugin = WORK / "plugin"
    (plugin / "plugin").mkdir(parents=True, exist_ok=True)
    (plugin / "plugin" / "__init__.py").write_text("")
    (plugin / "plugin" / "weighted.py").write_text(PLUGIN)
    (plugin / "plugin" / "matvec.py").write_text(MATVEC)
    batch = {"batch": {"max_batch_size": 32, "batch_wait_timeout_s": 0.002}}
    config = {"name": "Bench", "code": "bench", "version": "0.1.0", "category": "neural_net", "data_type": "text",
              "actions": {"inference": {"entrypoint": "plugin.weighted:WeightedSum", "method": "serve"},
                          "matvec": {"entrypoint": "plugin.matvec:MatVec", "method": "serve"},
                          "matvec_batched": {"entrypoint": "plugin.matvec:MatVec", "method": "serve",
                                             "serve_options": batch}}}
    (plugin / "config.yaml").write_text(json.dumps(config))
    with zipfile.ZipFile(plugin / "weights.zip", "w") as zf:
        zf.writestr("weights.json", json.dumps(WEIGHTS))
    (plugin / "models.json").write_text(json.dumps({"1": {"name": "weighted-sum", "file": str(plugin / "weights.zip")}}))
    (WORK / "plain").mkdir(exist_ok=True)
    (WORK / "plain" / "plain_app.py").write_text(PLAIN)
    (WORK / "ray_app.py").write_text(RAY_APP)
    return plugin


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_pids(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(parents.get(pid, []))
    return out


def session_pids(sid: int) -> set[int]:
    """Processes of the server's session (it was started with ``start_new_session``)."""
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[4]) == sid:
                    out.add(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return out


def tree_rss_mib(root: int) -> float:
    """Sum of VmRSS over the process and its descendants (shared pages count once per process)."""
    total = 0
    for pid in tree_pids(root):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def post(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=json.dumps(BODY).encode(), method="POST",
                                 headers={"content-type": "application/json", "serve_multiplexed_model_id": TOKEN})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


class Server:
    def __init__(self, name: str, cmd: list[str], env: dict[str, str], cwd: Path, port: int, limit_s: float) -> None:
        self.name, self.url, self.limit_s = name, f"http://127.0.0.1:{port}/", limit_s
        self.log = open(WORK / f"{name}.log", "wb")  # noqa: SIM115 - closed in stop()
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, env={**os.environ, **THREADS_ENV, **env}, cwd=cwd, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.first_s = self.idle_rss = float("nan")

    def wait_first_answer(self) -> Server:
        while time.perf_counter() - self.t0 < self.limit_s:
            status, body = post(self.url, timeout=2.0)
            if status == 200:
                self.first_s = time.perf_counter() - self.t0
                got = json.loads(body)["prediction"]
                if not self.name.startswith("matvec") and abs(got - EXPECTED) > 1e-9:
                    raise SystemExit(f"{self.name} answered {got}, not {EXPECTED}")
                break
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited {self.proc.returncode}: see {self.log.name}")
            time.sleep(0.01)
        else:
            raise SystemExit(f"{self.name}: no answer within {self.limit_s} s: see {self.log.name}")
        time.sleep(0.5)
        self.idle_rss = tree_rss_mib(self.proc.pid)
        print(f"{self.name}: first answer {self.first_s:.2f} s, idle RSS {self.idle_rss:.0f} MiB", file=sys.stderr)
        return self

    def stop(self) -> None:
        pids = set(tree_pids(self.proc.pid)) | session_pids(self.proc.pid)  # Ray's daemons may be reparented
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
            try:
                self.proc.wait(15)
                break
            except subprocess.TimeoutExpired:
                continue
        self.log.close()


def parse_duration_ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def wrk(url: str, conns: int, duration: float) -> dict[str, float]:
    script = WORK / "post.lua"
    script.write_text(f'wrk.method = "POST"\nwrk.body = {json.dumps(json.dumps(BODY))}\n'
                      f'wrk.headers["Content-Type"] = "application/json"\n'
                      f'wrk.headers["serve_multiplexed_model_id"] = "{TOKEN}"\n')
    out = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{max(1, round(duration))}s", "--timeout", "10s", "--latency",
                          "-s", str(script), url], capture_output=True, text=True, check=True).stdout
    pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
            "p50": parse_duration_ms(pct["50"]), "p99": parse_duration_ms(pct["99"]),
            "errors": (int(bad.group(1)) if bad else 0) + (sum(map(int, sock.groups())) if sock else 0)}


HTTPX_LOAD = '''
import asyncio, json, sys, time
import httpx
url, conns, duration, body, token = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
lat, errors = [], 0
async def worker(client, end):
    global errors
    while time.perf_counter() < end:
        t = time.perf_counter()
        r = await client.post(url, content=body, headers={"content-type": "application/json", "serve_multiplexed_model_id": token})
        lat.append(time.perf_counter() - t)
        errors += r.status_code != 200
async def main():
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=conns), timeout=10) as client:
        t0 = time.perf_counter(); end = t0 + duration
        await asyncio.gather(*(worker(client, end) for _ in range(conns)))
        wall = time.perf_counter() - t0
    lat.sort()
    print(json.dumps({"rps": len(lat) / wall, "p50": lat[len(lat) // 2] * 1e3, "p99": lat[int(len(lat) * 0.99)] * 1e3, "errors": errors}))
asyncio.run(main())
'''


def httpx_load(url: str, conns: int, duration: float) -> dict[str, float]:
    deps = overlay(sys.executable, "shim")  # the same interpreter as ours-shim and uvicorn
    out = subprocess.run([sys.executable, "-c", f"import sys; sys.path.append({str(deps)!r})\n" + HTTPX_LOAD, url,
                          str(conns), str(duration), json.dumps(BODY), TOKEN], capture_output=True, text=True,
                         check=True, timeout=duration + 60).stdout
    return json.loads(out)


def load(server: Server, conns: int, duration: float) -> dict[str, float]:
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.25):
            peak[0] = max(peak[0], tree_rss_mib(server.proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = (wrk if shutil.which("wrk") else httpx_load)(server.url, conns, duration)
    finally:
        done.set()
        sampler.join()
    return {**result, "rss": peak[0]}


def ours(name: str, python: str, tag: str, plugin: Path, action: str = "inference") -> Server:
    port = free_port()
    env = {"PYTHONPATH": str(ROOT), "SYNAPSE_SERVE_PORT": str(port), "SYNAPSE_SERVE_HOST": "127.0.0.1",
           "SYNAPSE_HOST": BACKEND, "SYNAPSE_MODELS_FILE": str(plugin / "models.json"),
           "SYNAPSE_CACHE_DIR": str(WORK / "cache"), "SYNAPSE_JOB_ID": "servebench", "SYNAPSE_GPU_PROBE": "0",
           "SYNAPSE_SERVE_ROUTE_PREFIX": "/", "SYNAPSE_ACTION": action}
    cmd = [python, "-c", BOOT_OURS, str(overlay(python, tag)), "serve", "--plugin", str(plugin), "--action", action]
    return Server(name, cmd, env, plugin, port, 60)


def start(name: str, plugin: Path, sdk_python: str) -> Server:
    if name == "ours-shim":
        return ours(name, sys.executable, "shim", plugin)
    if name == "ours-real":
        return ours(name, sdk_python, "real", plugin)
    if name in ("matvec-off", "matvec-on"):
        return ours(name, sys.executable, "shim", plugin, "matvec" if name == "matvec-off" else "matvec_batched")
    port = free_port()
    if name == "uvicorn":
        cmd = [sys.executable, "-c", BOOT_UVICORN, str(overlay(sys.executable, "shim")), str(port)]
        return Server(name, cmd, {}, WORK / "plain", port, 60)
    if name == "ray":
        return Server(name, [ray_python(), str(WORK / "ray_app.py"), str(port)], {"RAY_USAGE_STATS_ENABLED": "0"},
                      WORK, port, 300)
    raise SystemExit(f"unknown server {name!r}")


def phase(names: list[str], plugin: Path, concs: list[int], duration: float, rounds: int,
          results: dict[str, Any], sdk_python: str = "") -> None:
    servers = []
    try:
        for name in names:  # one at a time: the start-up of one is not measured under another's
            servers.append(start(name, plugin, sdk_python).wait_first_answer())
            results[name] = {"first_s": servers[-1].first_s, "idle_rss": servers[-1].idle_rss, "runs": {}}
        for rnd in range(rounds):
            for conns in concs:
                order = servers[rnd % len(servers):] + servers[:rnd % len(servers)]
                for server in order:
                    r = load(server, conns, duration)
                    results[server.name]["runs"].setdefault(conns, []).append(r)
                    print(f"round {rnd + 1} c={conns:<3} {server.name:<10} {r['rps']:8.0f} req/s p50 {r['p50']:7.2f} ms "
                          f"p99 {r['p99']:7.2f} ms errors {r['errors']} RSS {r['rss']:.0f} MiB", file=sys.stderr)
    finally:
        for server in servers:
            server.stop()


def med(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def report(results: dict[str, Any], concs: list[int]) -> None:
    print("\n| server | first answer s | idle RSS MiB | peak RSS MiB under load |\n|---|---|---|---|")
    for name, r in results.items():
        peak = max((x["rss"] for runs in r["runs"].values() for x in runs), default=float("nan"))
        print(f"| {name} | {r['first_s']:.2f} | {r['idle_rss']:.0f} | {peak:.0f} |")
    ratio: dict[str, dict[str, list[float]]] = {}

    def row(conns: int, name: str, peers: list[str]) -> None:
        runs = results[name]["runs"][conns]
        rps, p99 = med(runs, "rps"), med(runs, "p99")
        cells = []
        for other, key in zip(peers, ("rps", "p99", "rps")):
            base = results.get(other, {}).get("runs", {}).get(conns)
            value = (rps if key == "rps" else p99) / med(base, key) if base and other != name else None
            if value is not None:
                ratio.setdefault(name, {}).setdefault(f"{key}/{other}", []).append(value)
            cells.append("" if value is None else f"{value:.2f}x")
        print(f"| {conns} | {name} | {rps:.0f} | {med(runs, 'p50'):.2f} | {p99:.2f} | "
              f"{sum(x['errors'] for x in runs)} | " + " | ".join(cells) + " |")

    print("\n| clients | server | req/s | p50 ms | p99 ms | errors | req/s / uvicorn's | p99 / uvicorn's | req/s / Ray's |")
    print("|---|---|---|---|---|---|---|---|---|")
    for conns in concs:
        for name, r in results.items():
            if not name.startswith("matvec") and conns in r["runs"]:
                row(conns, name, ["uvicorn", "uvicorn", "ray"])
    if any(n.startswith("matvec") for n in results):
        print("\n| clients | server | req/s | p50 ms | p99 ms | errors | req/s / batch off | p99 / batch off |")
        print("|---|---|---|---|---|---|---|---|")
        for conns in concs:
            for name, r in results.items():
                if name.startswith("matvec") and conns in r["runs"]:
                    off = name.replace("-on", "-off")
                    row(conns, name, [off, off])
    print("\nGoals (the worst ratio over the concurrencies):")
    for name, r in results.items():
        got = ratio.get(name, {})
        checks = []
        if name.startswith("ours") and "rps/uvicorn" in got:
            checks.append(("req/s >= 0.8x uvicorn's", min(got["rps/uvicorn"]), min(got["rps/uvicorn"]) >= 0.8))
            checks.append(("p99 <= 2x uvicorn's", max(got["p99/uvicorn"]), max(got["p99/uvicorn"]) <= 2.0))
        if name.startswith("ours") and "rps/ray" in got:
            checks.append(("req/s >= 5x Ray's", min(got["rps/ray"]), min(got["rps/ray"]) >= 5.0))
        if name.startswith("ours"):
            checks.append(("idle RSS MiB <= 150", r["idle_rss"], r["idle_rss"] <= 150))
        if name.startswith("ours-shim"):
            checks.append(("first answer s <= 2", r["first_s"], r["first_s"] <= 2.0))
        if name.startswith("matvec-on"):
            key = "rps/" + name.replace("-on", "-off")
            if key in got:
                checks.append(("batching raises req/s (on / off)", min(got[key]), min(got[key]) > 1.0))
        for what, value, ok in checks:
            print(f"- {name}: {what}: {value:.2f} {'met' if ok else 'MISSED'}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="ours-shim,ours-real,uvicorn,ray,batch",
                    help="comma-separated: ours-shim, ours-real, uvicorn, ray, batch (matvec-off and matvec-on)")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per load run")
    ap.add_argument("--concurrency", default="1,4,16,64", help="concurrent clients, comma-separated")
    ap.add_argument("--rounds", type=int, default=3, help="paired rounds per phase (medians over them)")
    ap.add_argument("--skip-ray", action="store_true", help="leave Ray Serve out (no 290 MB venv)")
    ap.add_argument("--sdk-python", default=str(ROOT / ".venv-sdk" / "bin" / "python"),
                    help="Python of a venv with the real synapse-sdk, for the ours-real rows (default: the "
                         "repository's .venv-sdk, as make sdk-venv makes it)")
    args = ap.parse_args()
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    if args.skip_ray and "ray" in only:
        only.remove("ray")
    concs = [int(c) for c in args.concurrency.split(",")]
    WORK.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(WORK / "cache", ignore_errors=True)
    plugin = write_fixtures()
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "synapse_runtime")], check=False)
    print(f"load generator: {'wrk' if shutil.which('wrk') else 'httpx'}; load average {os.getloadavg()[0]:.1f}; "
          f"{os.cpu_count()} CPUs", file=sys.stderr)
    results: dict[str, Any] = {}
    if not Path(args.sdk_python).exists() and any(n.startswith("ours-real") for n in only):
        print(f"no {args.sdk_python}: the ours-real rows are left out (--sdk-python)", file=sys.stderr)
        only = [n for n in only if not n.startswith("ours-real")]
    main_names = [n for n in only if n not in ("ray", "batch")]
    if main_names:
        phase(main_names, plugin, concs, args.duration, args.rounds, results, args.sdk_python)
    if "ray" in only:
        phase(["ray"], plugin, concs, args.duration, args.rounds, results)
    if "batch" in only:
        phase(["matvec-off", "matvec-on"], plugin, [c for c in concs if c >= 16] or concs, args.duration,
              args.rounds, results)
    report(results, concs)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}", file=sys.stderr)
    (WORK / "results.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
