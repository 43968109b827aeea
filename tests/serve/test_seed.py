"""A plain seed ``BaseInferenceAction`` (load_model / infer) served with no FastAPI app of its own."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.ci import require_module  # noqa: E402

require_module("fastapi", "the serve extra and its test deps (pip install -e '.[test]')")
require_module("uvicorn", "the serve extra and its test deps (pip install -e '.[test]')")

from tests.serve.helpers import Serving, model_archive  # noqa: E402

PLUGIN = '''
import os
import time
from typing import Any

from pydantic import BaseModel, Field

from synapse_runtime import BaseInferenceAction


class Params(BaseModel):
    """Add a model's offset to each number."""

    model_id: int = Field(description="the model to use")
    inputs: list[float] = Field(description="numbers to shift")


class Shift(BaseInferenceAction[Params]):
    params_model = Params

    def load_model(self, model_id: int) -> dict[str, Any]:
        info = super().load_model(model_id)
        with open(os.environ["LOADS_LOG"], "a") as fh:
            fh.write(f"{model_id}\\n")
        time.sleep(0.2)
        return {"offset": float((info["path"] / "offset.txt").read_text())}

    def infer(self, model: Any, inputs: list[Any]) -> list[Any]:
        if any(x < 0 for x in inputs):
            raise ValueError("negative input")
        return [{"y": x + model["offset"], "call_size": len(inputs)} for x in inputs]
'''


def start(tmp_path: Path, serve_options: dict | None = None) -> Serving:
    root = tmp_path / "seed"
    (root / "plugin").mkdir(parents=True)
    (root / "plugin" / "__init__.py").write_text("")
    (root / "plugin" / "shift.py").write_text(PLUGIN)
    action = {"entrypoint": "plugin.shift:Shift", "method": "restapi"}
    if serve_options:
        action["serve_options"] = serve_options
    (root / "config.yaml").write_text(json.dumps({"name": "Shift", "code": "shift", "version": "0.1.0",
                                                  "actions": {"predict": action}}))
    model_archive(tmp_path / "m10.zip", {"offset.txt": "10"})
    model_archive(tmp_path / "m20.zip", {"offset.txt": "20"})
    (tmp_path / "models.json").write_text(json.dumps({"10": {"file": str(tmp_path / "m10.zip")},
                                                       "20": {"file": str(tmp_path / "m20.zip")}}))
    return Serving(root, {"SYNAPSE_MODELS_FILE": str(tmp_path / "models.json"), "LOADS_LOG": str(tmp_path / "loads"),
                          "SYNAPSE_CACHE_DIR": str(tmp_path / "cache")}).wait_ready()


def test_seed_action_served_from_its_params_model(tmp_path: Path) -> None:
    srv = start(tmp_path)
    try:
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda i: srv.post({"model_id": 10 + 10 * (i % 2), "inputs": [i]}), range(12)))
        assert [a.json()["results"][0]["y"] for a in answers] == [i + 10 + 10 * (i % 2) for i in range(12)]
        assert sorted((tmp_path / "loads").read_text().split()) == ["10", "20"]  # each model loaded once
        schema = srv.get(srv.prefix + "/openapi.json").json()
        params = schema["components"]["schemas"]["Params"]
        assert set(params["required"]) == {"model_id", "inputs"}
        assert params["properties"]["model_id"]["description"] == "the model to use"
        missing = srv.post({"model_id": 10})
        assert missing.status == 422 and missing.json()["detail"][0]["loc"] == ["body", "inputs"]
        unknown = srv.post({"model_id": 99, "inputs": [1]})
        assert unknown.status == 404 and unknown.json()["error_type"] == "ModelNotFound"
        failing = srv.post({"model_id": 10, "inputs": [-1]})
        assert failing.status == 500 and failing.json() == {"detail": "negative input", "error_type": "ValueError"}
        assert srv.post({"model_id": 20, "inputs": [1]}).json()["results"][0]["y"] == 21
        assert srv.stop() == 0
    finally:
        srv.kill()


def test_seed_batching_concatenates_inputs_into_one_infer_call(tmp_path: Path) -> None:
    srv = start(tmp_path, {"batch": {"max_batch_size": 8, "batch_wait_timeout_s": 0.3}})
    try:
        assert srv.post({"model_id": 10, "inputs": [0]}).status == 200  # load first
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda i: srv.post({"model_id": 10, "inputs": [i, i]}), range(6)))
        assert [[r["y"] for r in a.json()["results"]] for a in answers] == [[i + 10.0, i + 10.0] for i in range(6)]
        assert max(r["call_size"] for a in answers for r in a.json()["results"]) > 2
        assert srv.stop() == 0
        metrics = [e for e in srv.events if e["type"] == "metrics" and e["category"] == "serve_totals"]
        assert metrics and metrics[0]["values"]["requests"] == 7
    finally:
        srv.kill()
