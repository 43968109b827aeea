"""Serving from the image: upstream's ``neural_net`` template (rendered from the upstream wheel, TODOs
filled with a small numpy model) mounted at /plugin, ``SYNAPSE_ACTION=inference``, port 8100 published.

In shim mode the image's ``synapse_sdk`` is the runtime's shim; with SYNAPSE_TEST_SDK_MODE=real the sdk
image's real package (upstream's own ``BaseServeDeployment``) runs the same plugin unchanged. Two models
by header, a bad request, and ``docker stop`` (SIGTERM) draining to exit 0 with a schema-valid stream.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.ci import require_module, skip_or_fail  # noqa: E402

from tests.compat import upstream_templates
from tests.integration.conftest import LABELS
from tests.serve.helpers import check_events, http, token

pytestmark = pytest.mark.docker
if not upstream_templates.available():
    skip_or_fail("upstream's wheel is not in build/upstream (make upstream-wheel)")


def test_image_serves_upstreams_template_by_model_header(docker_client: Any, runtime_image: str,
                                                         tmp_path: Path) -> None:
    require_module("jwt", "the serve extra and its test deps (pip install -e '.[test]')")
    require_module("jinja2", "the serve extra and its test deps (pip install -e '.[test]')")
    from tests.serve.test_upstream_template import models, render

    plugin = render(tmp_path / "plugin")
    plugin.chmod(0o755)
    registry = models(tmp_path)
    backend = "http://backend.test/"
    container = docker_client.containers.run(
        runtime_image, detach=True, labels=dict(LABELS), user=f"{os.getuid()}:{os.getgid()}", ports={"8100/tcp": ("127.0.0.1", None)},
        volumes={str(plugin): {"bind": "/plugin", "mode": "ro"}, str(tmp_path): {"bind": "/mnt/models", "mode": "ro"}},
        environment={"SYNAPSE_ACTION": "inference", "SYNAPSE_HOST": backend, "SYNAPSE_GPU_PROBE": "0",
                     "SYNAPSE_MODELS_FILE": f"/mnt/models/{registry.name}", "SYNAPSE_JOB_ID": "serve-image"})
    try:
        deadline = time.monotonic() + 90
        base = ""
        while time.monotonic() < deadline:
            container.reload()
            bound = (container.attrs["NetworkSettings"]["Ports"] or {}).get("8100/tcp")
            if container.status == "exited":
                break
            if bound:
                base = f"http://127.0.0.1:{bound[0]['HostPort']}"
                try:
                    if http("GET", base + "/-/healthz", timeout=2).status == 200:
                        break
                except OSError:
                    pass
            time.sleep(0.3)
        else:
            pytest.fail(f"not ready: {container.logs().decode()[-3000:]}")
        assert base, container.logs().decode()[-3000:]
        prefix = next(iter(http("GET", base + "/-/routes").json()))
        a = http("POST", base + prefix + "/", {"values": [1.0, 1.0]}, {"serve_multiplexed_model_id": token(11, key=backend)})
        b = http("POST", base + prefix + "/", {"values": [1.0, 1.0]}, {"serve_multiplexed_model_id": token(12, key=backend)})
        assert (a.status, b.status) == (200, 200), (a.body, b.body, container.logs().decode()[-3000:])
        assert a.json()["prediction"] == pytest.approx(3.5) and b.json()["prediction"] == pytest.approx(-1.5)
        assert http("POST", base + prefix + "/", {"values": "x"}, {"serve_multiplexed_model_id": token(11, key=backend)}).status == 422
        container.stop(timeout=30)
        code = container.wait(timeout=60)["StatusCode"]
        out = container.logs(stdout=True, stderr=False).decode()
        err = container.logs(stdout=False, stderr=True)
        lines = [line + "\n" for line in out.splitlines()]
        check_events([json.loads(line) for line in lines], code, lines, err)
        assert code == 0
    finally:
        container.remove(force=True, v=True)
