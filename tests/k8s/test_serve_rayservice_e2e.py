"""The RayService's serveConfigV2, deployed for real by Ray Serve (`serve run`, a local Ray), with its builder
(synapse_ray_app.py) and the version pins docs/serving-kubernetes.md writes down.

Opt-in: Ray is not a dependency of the runtime or of its test venv, and a local Ray takes about a minute
and 2 GiB to start. SYNAPSE_TEST_RAY_PYTHON names a Python that has the pinned set:
    uv venv -p 3.12 /tmp/ray-venv
    uv pip install -p /tmp/ray-venv/bin/python "ray[serve]==2.50.1" "protobuf<7" "fastapi<0.137" synapse-sdk==2026.2.17
    SYNAPSE_TEST_RAY_PYTHON=/tmp/ray-venv/bin/python python -m pytest tests/k8s/test_serve_rayservice_e2e.py
What it shows: the config the manifest carries (application name, route prefix, import path and args, the
deployment named) deploys an upstream-style plugin (a BaseServeDeployment whose FastAPI route takes `self`),
and a request reaches the instance (200 with the bound backend URL; not the 422 FastAPI >= 0.137 gives).
Only plugin_dir, backend_url, the port, one replica and its CPU share are changed for a laptop.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from .manifests import SERVE, kustomize
from .serve_crds import serve_config

RAY_PYTHON = os.environ.get("SYNAPSE_TEST_RAY_PYTHON", "")

pytestmark = pytest.mark.ray  # opt-in: deselected unless SYNAPSE_TEST_RAY_PYTHON is set (tests/k8s/conftest.py)

PLUGIN = """\
from fastapi import FastAPI
from pydantic import BaseModel
from synapse_sdk.plugins import BaseServeDeployment

app = FastAPI()


class InferenceInput(BaseModel):
    x: int


class InferenceDeployment(BaseServeDeployment):
    action_name = 'inference'
    app = app

    async def _get_model(self, model_info):
        return None

    @app.post('/')
    async def infer(self, data: InferenceInput) -> dict:
        return {'y': data.x * 2, 'backend': self.backend_url}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, data: bytes | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_serve_config_deploys_the_plugin_with_ray_serve(tmp_path: Path) -> None:
    rs = next(o for o in kustomize(SERVE / "rayservice") if o["kind"] == "RayService")
    config = serve_config(rs)
    (app,) = config["applications"]
    code, version = app["name"].split("@")
    plugin = tmp_path / code
    (plugin / "plugin").mkdir(parents=True)
    (plugin / "plugin" / "__init__.py").write_text("")
    (plugin / "plugin" / "inference.py").write_text(PLUGIN)
    (plugin / "config.yaml").write_text(textwrap.dedent(f"""\
        code: {code}
        version: {version}
        name: e2e
        category: neural_net
        actions:
          inference:
            entrypoint: plugin.inference.{app['deployments'][0]['name']}
            method: serve
        """))
    port = _free_port()
    config["http_options"]["port"] = port
    app["args"].update(plugin_dir=str(plugin), backend_url="http://backend.example")
    app["deployments"][0].update(num_replicas=1, ray_actor_options={"num_cpus": 0.5})
    (tmp_path / "serve.yaml").write_text(yaml.safe_dump(config))
    ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's unix socket paths must fit 107 bytes
    env = {**os.environ, "RAY_ADDRESS": "local", "RAY_TMPDIR": ray_tmp, "RAY_USAGE_STATS_ENABLED": "0",
           "PYTHONPATH": f"{SERVE / 'rayservice'}:{plugin}"}
    serve = Path(RAY_PYTHON).with_name("serve")
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([str(serve), "run", str(tmp_path / "serve.yaml")], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        routes: dict = {}
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status, body = _get(f"http://127.0.0.1:{port}/-/routes")
                routes = json.loads(body) if status == 200 else {}
            except (OSError, ValueError):
                routes = {}
            if routes:
                break
            time.sleep(2)
        assert routes == {app["route_prefix"]: app["name"]}, (tmp_path / "serve.log").read_text()[-3000:]
        status, body = _get(f"http://127.0.0.1:{port}{app['route_prefix']}/", json.dumps({"x": 21}).encode())
        assert (status, json.loads(body)) == (200, {"y": 42, "backend": "http://backend.example"})
        status, body = _get(f"http://127.0.0.1:{port}{app['route_prefix']}/", json.dumps({"x": "no"}).encode())
        assert status == 422 and "int_parsing" in body, "validation still answers with field errors"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # serve run's own session: it and the local Ray it started
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(ray_tmp, ignore_errors=True)
