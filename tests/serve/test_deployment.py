"""A serve deployment written against synapse_runtime directly, served for real on loopback.

Two models chosen by the ``serve_multiplexed_model_id`` header (upstream's JWT), each loaded once;
every bad request gets its documented status while the server keeps serving; ``/-/healthz``,
``/-/routes`` and ``/metrics`` answer as documented; SIGTERM drains with no accepted request lost.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.ci import require_module  # noqa: E402

require_module("fastapi", "the serve extra and its test deps (pip install -e '.[test]')")
require_module("uvicorn", "the serve extra and its test deps (pip install -e '.[test]')")
require_module("jwt", "the serve extra and its test deps (pip install -e '.[test]')")

from tests.serve.helpers import BACKEND, Serving, http, model_archive, token  # noqa: E402

PLUGIN = '''
import asyncio
import os
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from synapse_runtime.serve import BaseServeDeployment, get_multiplexed_model_id

app = FastAPI()


class Inp(BaseModel):
    text: str
    sleep: float = 0.0
    fail: bool = False
    batch: bool = False


class Echo(BaseServeDeployment):
    app = app

    async def _get_model(self, info: dict[str, Any]) -> Any:
        with open(os.environ["LOADS_LOG"], "a") as fh:
            fh.write(str(info["id"]) + "\\n")
        weights = (info["path"] / "weights.txt").read_text().strip()
        if weights == "broken":
            raise RuntimeError("weights are corrupt")
        await asyncio.sleep(0.2)  # a slow load: concurrent first requests must share it
        return weights

    @app.post("/")
    async def infer(self, data: Inp) -> dict[str, Any]:
        model = await self.get_model()
        print("[plugin] model header", get_multiplexed_model_id(), flush=True)
        if data.fail:
            raise ZeroDivisionError("the model divided by zero")
        if data.sleep:
            await asyncio.sleep(data.sleep)
        if data.batch:
            return await self.infer_batch({"model": model, "text": data.text})
        return {"model": model, "echo": data.text}

    @app.post("/deferred")
    async def deferred(self, body: dict) -> Any:
        async def run(data: Inp) -> dict:
            await asyncio.sleep(data.sleep)
            return {"done": data.text}

        return await self.handle_inference(body, Inp, run, deadline_s=0.2)

    async def infer_batch(self, requests: list[Any]) -> list[Any]:
        return [{"model": r["model"], "echo": r["text"], "batch_size": len(requests)} for r in requests]
'''


def make_plugin(root: Path, serve_options: dict | None = None) -> Path:
    (root / "plugin").mkdir(parents=True)
    (root / "plugin" / "__init__.py").write_text("")
    (root / "plugin" / "echo.py").write_text(PLUGIN)
    config = {"name": "Echo", "code": "echo", "version": "1.2.3", "category": "neural_net", "data_type": "text",
              "actions": {"inference": {"entrypoint": "plugin.echo:Echo", "method": "serve",
                                        **({"serve_options": serve_options} if serve_options else {})},
                          "train": {"entrypoint": "plugin.echo:Echo"}}}
    (root / "config.yaml").write_text(json.dumps(config))
    models = root / "models"
    models.mkdir()
    model_archive(models / "one.zip", {"weights.txt": "weights-one"})
    model_archive(models / "two.zip", {"weights.txt": "weights-two"})
    model_archive(models / "broken.zip", {"weights.txt": "broken"})
    (root / "models.json").write_text(json.dumps({
        "1": {"file": str(models / "one.zip")}, "2": {"file": str(models / "two.zip")},
        "3": {"file": str(models / "broken.zip")}, "4": {"file": str(models / "missing.zip")}}))
    return root


def start(tmp_path: Path, serve_options: dict | None = None, **env: str) -> Serving:
    root = make_plugin(tmp_path / "p", serve_options)
    return Serving(root, {"SYNAPSE_MODELS_FILE": str(root / "models.json"), "SYNAPSE_CACHE_DIR": str(tmp_path / "cache"),
                          "LOADS_LOG": str(tmp_path / "loads.log"), "SYNAPSE_SERVE_METRICS_INTERVAL": "0.5",
                          "SYNAPSE_SERVE_MAX_BODY": "1M", **env})


@pytest.fixture
def server(tmp_path: Path):
    srv = start(tmp_path).wait_ready()
    yield srv
    srv.kill()


def test_two_models_by_header_each_loaded_once_and_control_routes(server: Serving, tmp_path: Path) -> None:
    assert server.prefix == "/" + hashlib.md5(b"echo@1.2.3").hexdigest()  # upstream's infer_remote prefix
    assert server.get("/-/routes").json() == {server.prefix: "echo@1.2.3"}
    health = server.get("/-/healthz")
    assert (health.status, health.body) == (200, b"success")
    with ThreadPoolExecutor(8) as pool:  # concurrent first requests for one model: one load
        answers = list(pool.map(lambda i: server.post({"text": f"t{i}"}, model=token(1 + i % 2)), range(16)))
    assert all(a.status == 200 for a in answers), [a.body for a in answers]
    assert {a.json()["model"] for a in answers[::2]} == {"weights-one"}
    assert {a.json()["model"] for a in answers[1::2]} == {"weights-two"}
    assert sorted((tmp_path / "loads.log").read_text().split()) == ["1", "2"]
    metrics = server.get("/metrics").body.decode()
    assert 'synapse_serve_requests_total{status="200"} 16' in metrics
    assert 'synapse_serve_model_loads_total{outcome="ok"} 2' in metrics
    assert "synapse_serve_request_duration_seconds_count 16" in metrics
    assert server.stop() == 0
    events = server.events
    assert sum(1 for e in events if e["type"] == "download") >= 2
    interval = [e for e in events if e["type"] == "metrics" and e["category"] == "serve"]
    assert interval and sum(e["values"]["requests"] for e in interval) == 16
    assert len(events) < 40, "one event line per request"  # 16 requests: intervals, not lines
    outputs = [e["text"] for e in events if e["type"] == "output"]
    assert outputs and all("***" in t for t in outputs if "model header" in t)


def test_bad_requests_get_their_status_and_the_server_keeps_serving(server: Serving) -> None:
    good = token(1)
    cases = {
        "no model header": (server.post({"text": "x"}), 400, "NoModelGiven"),
        "malformed token": (server.post({"text": "x"}, model="not-a-jwt"), 401, "ModelTokenError"),
        "token signed by another key": (server.post({"text": "x"}, model=token(1, key="http://evil.test/")), 401,
                                        "ModelTokenError"),
        "unknown model id": (server.post({"text": "x"}, model=token(99)), 404, "ModelNotFound"),
        "loader raises": (server.post({"text": "x"}, model=token(3)), 502, "RuntimeError"),
        "archive missing": (server.post({"text": "x"}, model=token(4)), 502, None),
        "infer raises": (server.post({"text": "x", "fail": True}, model=good), 500, "ZeroDivisionError"),
    }
    for name, (resp, status, error_type) in cases.items():
        assert resp.status == status, (name, resp.status, resp.body)
        body = resp.json()
        assert "Traceback" not in resp.body.decode() and body["detail"], name
        if error_type:
            assert body["error_type"] == error_type, (name, body)
    schema = server.post({"txt": "x"}, model=good)
    assert schema.status == 422 and schema.json()["detail"][0]["loc"] == ["body", "text"]
    broken_json = server.post(raw=b'{"text": ', model=good)
    assert broken_json.status == 422 and broken_json.json()["detail"][0]["type"] == "json_invalid"
    too_big = server.post(raw=json.dumps({"text": "x" * 2_000_000}).encode(), model=good)
    assert too_big.status == 413 and too_big.json()["error_type"] == "BodyTooLarge"
    assert server.post({"text": "still"}, model=good).json() == {"model": "weights-one", "echo": "still"}
    assert server.stop() == 0
    errors = [e for e in server.events if e["type"] == "error"]
    infer_error = next(e for e in errors if e["error_type"] == "ZeroDivisionError")
    assert infer_error["details"]["status"] == 500 and "divided by zero" in infer_error["traceback"]
    assert any(e["error_type"] == "RuntimeError" and e["details"]["status"] == 502 for e in errors)


def test_max_ongoing_requests_answers_503_at_once(tmp_path: Path) -> None:
    srv = start(tmp_path, {"max_ongoing_requests": 2}).wait_ready()
    try:
        model = token(1)
        assert srv.post({"text": "warm"}, model=model).status == 200
        with ThreadPoolExecutor(6) as pool:
            slow = [pool.submit(srv.post, {"text": "s", "sleep": 1.0}, model=model) for _ in range(2)]
            time.sleep(0.3)
            t0 = time.monotonic()
            over = srv.post({"text": "over"}, model=model)
            assert over.status == 503 and over.json()["error_type"] == "Overloaded"
            assert time.monotonic() - t0 < 0.5, "a rejection must not queue"
            assert [f.result().status for f in slow] == [200, 200]
        assert srv.stop() == 0
    finally:
        srv.kill()


def test_batching_gives_infer_batch_real_batches(tmp_path: Path) -> None:
    srv = start(tmp_path, {"batch": {"max_batch_size": 4, "batch_wait_timeout_s": 0.2}}).wait_ready()
    try:
        model = token(2)
        assert srv.post({"text": "warm"}, model=model).status == 200
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda i: srv.post({"text": str(i), "batch": True}, model=model), range(8)))
        assert [a.json()["echo"] for a in answers] == [str(i) for i in range(8)]
        sizes = [a.json()["batch_size"] for a in answers]
        assert max(sizes) > 1 and max(sizes) <= 4, sizes
        assert srv.stop() == 0
    finally:
        srv.kill()


def test_sigterm_drains_in_flight_requests_none_lost(tmp_path: Path) -> None:
    srv = start(tmp_path, SYNAPSE_SERVE_DRAIN="10").wait_ready()
    model = token(1)
    assert srv.post({"text": "warm"}, model=model).status == 200
    results: list[int] = []
    failures: list[str] = []

    def client(i: int) -> None:
        try:
            results.append(srv.post({"text": str(i), "sleep": 1.0}, model=model).status)
        except Exception as exc:  # a refused connection after the listener closed is not an accepted request
            failures.append(type(exc).__name__)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    time.sleep(0.5)  # all 12 in flight
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(0.1)
    assert srv.get("/-/healthz").status == 503  # readiness off at once, while the requests finish
    late = srv.post({"text": "late"}, model=model)
    assert late.status == 503 and late.json()["error_type"] == "Unavailable"
    for t in threads:
        t.join(30)
    assert results == [200] * 12 and not failures
    assert srv.wait(30) == 0
    totals = next(e for e in srv.events if e["type"] == "metrics" and e["category"] == "serve_totals")["values"]
    assert totals["requests"] == 13 and totals["errors_5xx"] == 0
    with pytest.raises(OSError):  # the process is gone and its port closed
        socket.create_connection(srv.base.removeprefix("http://").split(":")[0:2] and
                                 (srv.base.split("//")[1].split(":")[0], int(srv.base.rsplit(":", 1)[1])), 1)


def test_drain_cut_short_is_143(tmp_path: Path) -> None:
    srv = start(tmp_path, SYNAPSE_SERVE_DRAIN="0.5").wait_ready()
    model = token(1)
    assert srv.post({"text": "warm"}, model=model).status == 200
    slow = threading.Thread(target=lambda: srv.post({"text": "slow", "sleep": 5.0}, model=model), daemon=True)
    slow.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    assert srv.stop() == 143
    assert time.monotonic() - t0 < 4
    assert srv.events[-1]["status"] == "cancelled"


def test_route_prefix_from_checksum_and_override(tmp_path: Path) -> None:
    srv = start(tmp_path, SYNAPSE_PLUGIN_RELEASE_CHECKSUM="abc123").wait_ready()
    try:
        assert srv.prefix == "/abc123" and srv.post({"text": "x"}, model=token(1)).status == 200
        assert http("POST", srv.base + "/elsewhere/", {"text": "x"}).status == 404
        assert srv.stop() == 0
    finally:
        srv.kill()
    srv = start(tmp_path / "b", SYNAPSE_PLUGIN_RELEASE_CHECKSUM="abc123", SYNAPSE_SERVE_ROUTE_PREFIX="/models/echo")
    try:
        assert srv.wait_ready().prefix == "/models/echo"
        assert srv.stop() == 0
    finally:
        srv.kill()


def test_default_model_from_checkpoint_is_loaded_before_ready(tmp_path: Path) -> None:
    root_models = tmp_path / "ckpt"
    root_models.mkdir()
    archive = model_archive(root_models / "default.zip", {"weights.txt": "weights-default"})
    srv = start(tmp_path, SYNAPSE_CHECKPOINT=str(archive), SYNAPSE_CHECKPOINT_EXTRACT="1").wait_ready()
    try:
        assert srv.post({"text": "x"}).json() == {"model": "weights-default", "echo": "x"}
        assert srv.post({"text": "x"}, model=token(2)).json()["model"] == "weights-two"
        assert srv.stop() == 0
    finally:
        srv.kill()


@pytest.mark.parametrize("env,args,code,error_type", [
    ({"SYNAPSE_SERVE_PORT": "eighty"}, [], 2, "ValidationError"),
    ({"SYNAPSE_SERVE_DRAIN": "-1"}, [], 2, "ValidationError"),
    ({}, ["--action", "nope"], 3, "ActionNotFoundError"),
    ({"SYNAPSE_CHECKPOINT": "/nonexistent/model.zip", "SYNAPSE_CHECKPOINT_EXTRACT": "1"}, [], 4, None),
])
def test_exit_codes_at_start(tmp_path: Path, env: dict, args: list, code: int, error_type: str | None) -> None:
    root = make_plugin(tmp_path / "p")
    srv = Serving(root, {"SYNAPSE_MODELS_FILE": str(root / "models.json"), "LOADS_LOG": str(tmp_path / "l"), **env},
                  args)
    try:
        assert srv.wait(60) == code
        error = next(e for e in srv.events if e["type"] == "error")
        assert error["code"] == code
        if error_type:
            assert error["error_type"] == error_type
    finally:
        srv.kill()


def test_port_in_use_is_exit_2(tmp_path: Path) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    root = make_plugin(tmp_path / "p")
    srv = Serving(root, {"SYNAPSE_MODELS_FILE": str(root / "models.json"), "LOADS_LOG": str(tmp_path / "l"),
                         "SYNAPSE_SERVE_PORT": str(busy.getsockname()[1])})
    try:
        assert srv.wait(60) == 2
        assert "cannot listen" in next(e for e in srv.events if e["type"] == "error")["message"]
    finally:
        srv.kill()
        busy.close()


@pytest.mark.parametrize("where", ["env", "env_file"])
def test_image_entrypoint_serves_when_synapse_action_names_a_serving_action(tmp_path: Path, where: str) -> None:
    """The action and plugin may come from the environment or from a mounted env file (the
    contract's inputs): either way the image's default command serves."""
    import sys

    root = make_plugin(tmp_path / "p")
    names = {"SYNAPSE_PLUGIN_DIR": str(root), "SYNAPSE_ACTION": "inference"}
    env = {"SYNAPSE_MODELS_FILE": str(root / "models.json"), "LOADS_LOG": str(tmp_path / "l"),
           "SYNAPSE_CACHE_DIR": str(tmp_path / "cache")}
    if where == "env":
        env.update(names)
    else:
        (tmp_path / "run.env").write_text("".join(f"{k}={v}\n" for k, v in names.items()))
        env["SYNAPSE_ENV_FILE"] = str(tmp_path / "run.env")
    srv = Serving(root, env, command=[sys.executable, str(Path(__file__).resolve().parents[2] / "entrypoint.py")])
    try:
        srv.wait_ready()
        assert srv.post({"text": "img"}, model=token(1)).json() == {"model": "weights-one", "echo": "img"}
        assert srv.stop() == 0
    finally:
        srv.kill()


def test_a_job_action_is_not_servable(tmp_path: Path) -> None:
    root = make_plugin(tmp_path / "p")
    (root / "plugin" / "job.py").write_text(textwrap.dedent('''
        from synapse_runtime import BaseAction
        class Job(BaseAction):
            def execute(self):
                return {}
    '''))
    config = json.loads((root / "config.yaml").read_text())
    config["actions"]["train"] = {"entrypoint": "plugin.job:Job"}
    (root / "config.yaml").write_text(json.dumps(config))
    srv = Serving(root, {"LOADS_LOG": str(tmp_path / "l")}, ["--action", "train"])
    try:
        assert srv.wait(60) == 3
        assert "cannot be served" in next(e for e in srv.events if e["type"] == "error")["message"]
    finally:
        srv.kill()


def test_chunked_body_over_the_limit_and_a_slow_client_stalls_nobody(server: Serving) -> None:
    import http.client

    host, port = server.base.removeprefix("http://").split(":")
    slow = socket.create_connection((host, int(port)))  # headers promise 100 bytes; 10 arrive, then nothing
    slow.sendall(f"POST {server.prefix}/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 f"Content-Length: 100\r\nserve_multiplexed_model_id: {token(1)}\r\n\r\n{{\"text\": ".encode())
    t0 = time.monotonic()
    assert server.post({"text": "fast"}, model=token(1)).status == 200
    assert time.monotonic() - t0 < 5
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    chunks = iter([b'{"text": "' + b"x" * 700_000, b"y" * 700_000 + b'"}'])
    conn.request("POST", server.prefix + "/", body=chunks, encode_chunked=True,
                 headers={"content-type": "application/json", "serve_multiplexed_model_id": token(1)})
    resp = conn.getresponse()
    assert resp.status == 413 and json.loads(resp.read())["error_type"] == "BodyTooLarge"
    slow.close()
    assert server.post({"text": "after"}, model=token(1)).status == 200
    assert server.stop() == 0


def test_deferred_responses_give_a_ticket_to_poll(server: Serving) -> None:
    model = token(1)
    quick = server.post({"text": "q"}, model=model, path="/deferred")
    assert quick.json() == {"done": "q"}  # within the deadline: the bare result, as upstream
    pending = server.post({"text": "slow", "sleep": 1.0}, model=model, path="/deferred").json()
    assert pending["__synapse_deferred__"] is True and pending["status"] == "pending"
    poll = {"__synapse_poll__": pending["ticket"]}
    assert server.post(poll, model=model, path="/deferred").json()["status"] == "pending"
    time.sleep(1.2)
    assert server.post(poll, model=model, path="/deferred").json() == {"done": "slow"}
    assert server.post(poll, model=model, path="/deferred").json()["status"] == "not_found"
    assert server.stop() == 0


def test_model_metadata_from_the_backend_with_the_tokens_user(tmp_path: Path) -> None:
    """No registry file: the JWT's user token and tenant fetch ``GET models/{id}/`` from the backend."""
    from tests.backend.backend_fake import TENANT, USER_TOKEN, FakeBackend
    from tests.secrets import register

    register(USER_TOKEN)
    backend = FakeBackend()
    backend.auth = "user"
    backend.thread.start()
    root = make_plugin(tmp_path / "p")
    backend.models["5"] = {"id": 5, "name": "five", "file": str(root / "models" / "two.zip")}
    srv = Serving(root, {"SYNAPSE_HOST": backend.url, "LOADS_LOG": str(tmp_path / "l"),
                         "SYNAPSE_CACHE_DIR": str(tmp_path / "cache")})
    try:
        srv.wait_ready()
        ok = srv.post({"text": "b"}, model=token(5, key=backend.url, user_token=USER_TOKEN, tenant=TENANT))
        assert ok.status == 200 and ok.json()["model"] == "weights-two", ok.body
        gone = srv.post({"text": "b"}, model=token(6, key=backend.url, user_token=USER_TOKEN, tenant=TENANT))
        assert gone.status == 404
        refused = srv.post({"text": "b"}, model=token(5, key=backend.url, user_token="wrong-token-xyz", tenant=TENANT))
        assert refused.status == 401 and refused.json()["error_type"] == "ModelTokenError"
        calls = backend.calls("GET", "/models/")
        assert [c.path for c in calls][:2] == ["/models/5/", "/models/6/"]
        assert calls[0].headers.get("Authorization") == f"Token {USER_TOKEN}"
        assert srv.stop() == 0
        assert USER_TOKEN not in "".join(srv.lines)
    finally:
        srv.kill()
        backend.server.shutdown()


@pytest.mark.parametrize("probe", ["1", "0"])
def test_server_start_event_honours_the_gpu_probe_setting(tmp_path: Path, probe: str) -> None:
    """The server asks for GPUs as a run does: nvidia-smi's answer (a stand-in binary, same CSV)
    when the probe is on, none and no nvidia-smi call when SYNAPSE_GPU_PROBE=0."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho called >> \"$(dirname \"$0\")/calls\"\n"
                   "echo '0, NVIDIA H100 80GB HBM3, 81559, GPU-0f1e2d3c'\n")
    smi.chmod(0o755)
    root = make_plugin(tmp_path / "p")
    srv = Serving(root, {"SYNAPSE_MODELS_FILE": str(root / "models.json"), "LOADS_LOG": str(tmp_path / "l"),
                         "SYNAPSE_GPU_PROBE": probe, "NVIDIA_VISIBLE_DEVICES": "all",
                         "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    try:
        start = next(e for e in srv.wait_started().events if e["type"] == "start")
        if probe == "1":
            assert [g["name"] for g in start["gpus"]] == ["NVIDIA H100 80GB HBM3"] and start["device"] == "cuda"
        else:
            assert start["gpus"] == [] and not (bin_dir / "calls").exists()
        assert srv.stop() == 0
    finally:
        srv.kill()
