"""Upstream's own ``neural_net`` plugin template, rendered from the upstream wheel, served unchanged.

``inference.py.j2`` is rendered as ``synapse-sdk new`` renders it; only its TODOs are filled (an
input model, ``_get_model`` loading a small linear model fitted with numpy, ``infer`` calling it). The
class derives upstream's ``BaseServeDeployment`` (the shim's here, the real one in real-package
mode), its routes take ``self`` on a module-level FastAPI app, and ``get_model`` asks
``ray.serve.get_multiplexed_model_id()``, with no Ray installed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.ci import require_module, skip_or_fail  # noqa: E402

require_module("fastapi", "the serve extra and its test deps (pip install -e '.[test]')")
require_module("uvicorn", "the serve extra and its test deps (pip install -e '.[test]')")
np = require_module("numpy", "the serve extra and its test deps (pip install -e '.[test]')")

from tests.compat import upstream_templates  # noqa: E402
from tests.serve.helpers import Serving, token  # noqa: E402

if not upstream_templates.available():
    skip_or_fail("upstream's wheel is not in build/upstream (make upstream-wheel)")

INPUT = '''    values: list[float]
'''
GET_MODEL = '''        import numpy as np

        with np.load(model_info['path'] / 'model.npz') as weights:
            return weights['w'], float(weights['b'])
'''
INFER = '''        w, b = await self.get_model()
        return {'prediction': float(sum(x * wi for x, wi in zip(data.values, w)) + b)}
'''


def render(dest: Path) -> Path:
    import jinja2

    ctx = {"name": "Linear", "code": "linear", "version": "0.2.0", "category": "neural_net",
           "description": "upstream's template", "data_type": "text"}
    (dest / "plugin").mkdir(parents=True)
    (dest / "plugin" / "__init__.py").write_text("")
    for name in ("inference", "deployment"):
        text = jinja2.Template(upstream_templates._read(f"neural_net/plugin/{name}.py.j2")).render(**ctx)
        if name == "inference":
            text = text.replace("    # TODO: Define your inference input fields here.\n    pass\n", INPUT)
            text, n1 = re.subn(r"        raise NotImplementedError\(\n            'Implement model loading here. '.*?\)(?:\n|\Z)",
                               lambda m: GET_MODEL, text, flags=re.S)
            text, n2 = re.subn(r"        raise NotImplementedError\(\n            'Implement inference logic here. '.*?\)(?:\n|\Z)",
                               lambda m: INFER, text, flags=re.S)
            assert n1 == n2 == 1 and "values: list[float]" in text, "the template changed: update the TODO fill"
        (dest / "plugin" / f"{name}.py").write_text(text)
    actions = [{"name": "inference", "entrypoint": "plugin.inference:InferenceDeployment", "method": "serve"},
               {"name": "deployment", "entrypoint": "plugin.deployment:InferenceDeployment", "method": "job"}]
    config = jinja2.Template(upstream_templates._read("base/config.yaml.j2")).render(actions=actions, **ctx)
    (dest / "config.yaml").write_text(config)
    return dest


def models(tmp: Path) -> Path:
    """Two linear models (least squares on generated data), each a zip with ``model.npz``; a registry file."""
    import io

    registry = {}
    for model_id, slope in ((11, 2.0), (12, -3.0)):
        x = np.random.default_rng(model_id).normal(size=(20, 2))
        y = x @ np.array([slope, 1.0]) + 0.5
        coef, *_ = np.linalg.lstsq(np.c_[x, np.ones(len(x))], y, rcond=None)
        buf = io.BytesIO()
        np.savez(buf, w=coef[:2], b=coef[2])
        archive = tmp / f"model-{model_id}.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("model.npz", buf.getvalue())
        registry[str(model_id)] = {"name": f"linear-{model_id}", "file": archive.name}  # relative to the file
    (tmp / "models.json").write_text(json.dumps(registry))
    return tmp / "models.json"


def test_upstream_neural_net_template_serves_two_models_by_header(tmp_path: Path) -> None:
    root = render(tmp_path / "linear")
    srv = Serving(root, {"SYNAPSE_MODELS_FILE": str(models(tmp_path)), "SYNAPSE_CACHE_DIR": str(tmp_path / "cache")})
    try:
        srv.wait_ready()
        a = srv.post({"values": [1.0, 1.0]}, model=token(11))
        b = srv.post({"values": [1.0, 1.0]}, model=token(12))
        assert a.status == b.status == 200, (a.body, b.body)
        assert a.json()["prediction"] == pytest.approx(3.5) and b.json()["prediction"] == pytest.approx(-1.5)
        bad = srv.post({"values": "nope"}, model=token(11))
        assert bad.status == 422
        unknown = srv.post({"values": [1.0, 1.0]}, model=token(404))
        assert unknown.status == 404, unknown.body  # through upstream's ModelLoadError wrapper in real mode
        assert srv.stop() == 0
        printed = [e["text"] for e in srv.events if e["type"] == "output"]
        assert all("eyJ" not in t for t in printed)  # upstream's get_model prints the token: redacted
    finally:
        srv.kill()


def test_upstream_deployment_action_in_the_runtime_says_what_to_run_instead(tmp_path: Path) -> None:
    """Shim mode: exit 3 naming `synapse-runtime serve`; real mode without Ray: upstream's own ImportError (exit 1)."""
    import os

    from synapse_runtime.compat import install, is_shim

    install()
    import synapse_sdk

    root = render(tmp_path / "linear")
    run = subprocess.run([sys.executable, "-m", "synapse_runtime", "run", "--plugin", str(root), "--action",
                          "deployment", "--output", str(tmp_path / "out")], env={**os.environ,
                         "SYNAPSE_ACTION_PARAMS": "{}"}, capture_output=True, text=True, timeout=120, cwd=root)
    error = next(json.loads(line) for line in run.stdout.splitlines() if '"type":"error"' in line)
    if is_shim(synapse_sdk):
        assert run.returncode == 3, run.stdout[-3000:]
        assert "synapse-runtime serve" in error["hint"] and "SYNAPSE_ACTION" in error["hint"]
    else:
        assert run.returncode == 1 and "Ray is required" in error["message"], run.stdout[-3000:]
