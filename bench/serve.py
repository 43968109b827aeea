"""Online inference: ``synapse-runtime serve`` against plain uvicorn serving an equivalent FastAPI app.

The same trivial model (``y = 2x``), loaded once, answered by a ``POST /`` route: ours is a
``BaseServeDeployment`` plugin (routes bound to the instance, the model from ``get_model()``, the
outer app's limits, metrics and events), the peer a module-level FastAPI app under
``uvicorn app:app``. Each server is started fresh; the time from ``Popen`` to the first 200, then
closed-loop keep-alive clients (asyncio, raw HTTP/1.1, in this process) at each concurrency for
``--seconds``: requests/s, p50 and p99 latency; the server's RSS after the load (VmRSS).
Ray Serve is not a peer here: it is not installed in the dev venv (issue 20 has its figures).

    python bench/serve.py [--seconds 5] [--concurrency 1,4,16,64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

OURS = '''
from fastapi import FastAPI
from pydantic import BaseModel
from synapse_runtime import BaseServeDeployment

app = FastAPI()

class Inp(BaseModel):
    x: float

class Double(BaseServeDeployment):
    app = app

    async def _get_model(self, info):
        return float((info["path"] / "factor.txt").read_text())

    @app.post("/")
    async def infer(self, data: Inp) -> dict:
        factor = await self.get_model()
        return {"y": data.x * factor}
'''

PLAIN = '''
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()
FACTOR = 2.0

class Inp(BaseModel):
    x: float

@app.post("/")
async def infer(data: Inp) -> dict:
    return {"y": data.x * FACTOR}
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(kind: str, tmp: Path) -> tuple[subprocess.Popen[bytes], str, float]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp), os.environ.get("PYTHONPATH", "")])}
    if kind == "ours":
        plugin = tmp / "ours"
        (plugin / "bench_plugin").mkdir(parents=True, exist_ok=True)
        (plugin / "bench_plugin" / "__init__.py").write_text("")
        (plugin / "bench_plugin" / "double.py").write_text(OURS)
        (plugin / "config.yaml").write_text(json.dumps({"name": "double", "code": "double", "version": "1.0.0",
            "actions": {"inference": {"entrypoint": "bench_plugin.double:Double", "method": "serve",
                                      "serve_options": {"max_ongoing_requests": 1000}}}}))
        with zipfile.ZipFile(tmp / "model.zip", "w") as zf:
            zf.writestr("factor.txt", "2.0")
        env.update(SYNAPSE_CHECKPOINT=str(tmp / "model.zip"), SYNAPSE_CHECKPOINT_EXTRACT="1",
                   SYNAPSE_SERVE_ROUTE_PREFIX="/", SYNAPSE_GPU_PROBE="0", SYNAPSE_CACHE_DIR=str(tmp / "cache"))
        cmd = [sys.executable, "-m", "synapse_runtime", "serve", "--plugin", str(plugin), "--host", "127.0.0.1",
               "--port", str(port)]
    else:
        (tmp / "plain_app.py").write_text(PLAIN)
        cmd = [sys.executable, "-m", "uvicorn", "plain_app:app", "--host", "127.0.0.1", "--port", str(port),
               "--no-access-log", "--log-level", "warning"]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
    url = f"http://127.0.0.1:{port}/"
    while True:
        try:
            req = urllib.request.Request(url, data=b'{"x": 1}', headers={"content-type": "application/json"})
            with urllib.request.urlopen(req, timeout=1) as resp:  # noqa: S310 - loopback
                if resp.status == 200:
                    return proc, f"127.0.0.1:{port}", time.monotonic() - t0
        except OSError:
            if proc.poll() is not None or time.monotonic() - t0 > 60:
                raise SystemExit(f"{kind} did not start") from None
            time.sleep(0.01)


async def client(host: str, port: int, until: float, latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    body = b'{"x": 3}'
    request = (b"POST / HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: "
               + str(len(body)).encode() + b"\r\n\r\n" + body)
    while time.monotonic() < until:
        t0 = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
        await reader.readexactly(length)
        if not head.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"bad answer: {head[:80]!r}")
        latencies.append(time.perf_counter() - t0)
    writer.close()


def load(address: str, concurrency: int, seconds: float) -> tuple[float, float, float]:
    host, port = address.split(":")
    latencies: list[float] = []

    async def main() -> None:
        until = time.monotonic() + seconds
        await asyncio.gather(*(client(host, int(port), until, latencies) for _ in range(concurrency)))

    t0 = time.monotonic()
    asyncio.run(main())
    elapsed = time.monotonic() - t0
    latencies.sort()
    return len(latencies) / elapsed, statistics.median(latencies) * 1000, latencies[int(0.99 * len(latencies))] * 1000


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", default="1,4,16,64")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    rows = []
    for kind in ("ours", "uvicorn"):
        with tempfile.TemporaryDirectory() as tmp:
            proc, address, first = start(kind, Path(tmp))
            try:
                results = {c: load(address, c, args.seconds) for c in levels}
                rows.append((kind, first, rss_mib(proc.pid), results))
            finally:
                proc.terminate()
                proc.wait(30)
    print("| server | first answer (s) | RSS after load (MiB) | " + " | ".join(f"c={c}: req/s, p50/p99 ms" for c in levels) + " |")
    print("|---|---|---|" + "---|" * len(levels))
    for kind, first, rss, results in rows:
        cells = " | ".join(f"{r:,.0f}, {p50:.1f}/{p99:.1f}" for r, p50, p99 in (results[c] for c in levels))
        print(f"| {kind} | {first:.2f} | {rss:.0f} | {cells} |")
    ours, plain = rows[0][3], rows[1][3]
    print("\nours / uvicorn requests/s: " + ", ".join(f"c={c}: {ours[c][0] / plain[c][0]:.2f}x" for c in levels))


if __name__ == "__main__":
    main()
