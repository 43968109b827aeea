"""The whole container contract, through real containers of our image and a real S3 server.

Every run is checked line by line against the event schema (``check_stream``); the containers run
as the hardened deployment does (read-only root, tmpfs /tmp, uid 10001), from the fixtures in
conftest.py.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import check_stream
from tests.secrets import register

pytestmark = pytest.mark.docker

SECRET_KEY = "testing-secret"
register(SECRET_KEY)


def ok(run: Any) -> Any:
    check_stream(run)
    assert not run.extra.get("bad_lines"), run.extra["bad_lines"][:5]
    return run


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, run_image_module: Any) -> Path:
    """Train the digits example once, in a container; its output holds model.zip."""
    out = tmp_path_factory.mktemp("trained")
    run = ok(run_image_module(plugin="digits", action="train", params={"epochs": 6, "seed": 3}, output_dir=out))
    assert run.exit_code == 0, run.events[-3:]
    return out


@pytest.fixture(scope="module")
def run_image_module(docker_client: Any, runtime_image: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.integration.conftest import ImageRunner

    runner = ImageRunner(docker_client, runtime_image, tmp_path_factory.mktemp("module-runs"))
    yield runner
    runner.close()


@pytest.fixture(scope="module")
def checkpoint_uri(s3_server: Any, trained: Path) -> str:
    bucket = s3_server.create_bucket()
    s3_server.client().upload_file(str(trained / "model.zip"), bucket, "models/digits/model.zip")
    return f"s3://{bucket}/models/digits/model.zip"


def test_train_writes_checkpoint_and_result(trained: Path) -> None:
    result = json.loads((trained / "result.json").read_text())
    assert result["status"] == "succeeded" and result["exit_code"] == 0
    assert result["result"]["val_accuracy"] > 0.9
    assert zipfile.is_zipfile(trained / "model.zip")


def test_infer_with_checkpoint_from_s3_params_as_file(run_image: Any, s3_server: Any, checkpoint_uri: str) -> None:
    run = ok(run_image(
        plugin="digits", action="infer", params={"samples": 30, "batch_size": 10},
        env={**s3_server.container_env(), "SYNAPSE_CHECKPOINT": checkpoint_uri}, network=s3_server.network,
    ))
    assert run.exit_code == 0, run.events[-3:]
    downloads = run.of_type("download")
    assert downloads and downloads[-1]["uri"] == checkpoint_uri and downloads[-1]["bytes"] == downloads[-1]["total"]
    assert run.value["processed_count"] == 30 and run.value["accuracy"] > 0.8
    assert len((run.output_dir / "predictions.jsonl").read_text().splitlines()) == 30


def test_params_as_env_vars(run_image: Any) -> None:
    run = ok(run_image(plugin="text-tools", env={"SYNAPSE_ACTION": "wordcount",
                                                  "SYNAPSE_ACTION_PARAMS": json.dumps({"text": "a b a", "top": 1})}))
    assert run.exit_code == 0 and run.value["top"] == [{"word": "a", "count": 2}]


def test_params_yaml_file_and_entrypoint_env(run_image: Any) -> None:
    run = ok(run_image(plugin="text-tools", params={"titles": ["Yaml Works"]}, params_name="params.yaml",
                       env={"SYNAPSE_ACTION_ENTRYPOINT": "text_tools.slug.slugify"}))
    assert run.exit_code == 0 and run.value == {"slugs": ["yaml-works"]}


def test_kubernetes_projected_configmap_and_secret(run_image: Any, s3_server: Any, checkpoint_uri: str) -> None:
    """Params, action and S3 credentials all arrive as a projected volume (..data symlinks)."""
    values = {
        "SYNAPSE_ACTION": "evaluate",
        "SYNAPSE_CHECKPOINT": checkpoint_uri,
        "SYNAPSE_CHECKPOINT_EXTRACT": "1",
        "SYNAPSE_JOB_ID": "job-from-configmap",
        **s3_server.container_env(),
    }
    run = ok(run_image(plugin="digits", env_dir=values, network=s3_server.network, termination_log=True))
    assert run.exit_code == 0, run.events[-3:]
    assert {e["job_id"] for e in run.events} == {"job-from-configmap"}
    assert run.value["accuracy"] > 0.9
    term = json.loads(run.extra["termination_message"])
    assert term["status"] == "succeeded" and term["exit_code"] == 0
    everything = run.stdout + run.stderr + (run.output_dir / "result.json").read_text() + run.extra["termination_message"]
    assert SECRET_KEY not in everything


@pytest.mark.parametrize("action,params,code,error_type", [
    ("noop", None, 0, None),
    ("fail", {"message": "on purpose"}, 1, "ExecutionError"),
    ("crash", None, 1, "KeyError"),
    ("strict", {"count": "x"}, 2, "ValidationError"),
    ("missing-action", None, 3, "ActionNotFoundError"),
])
def test_exit_codes(run_image: Any, action: str, params: Any, code: int, error_type: str | None) -> None:
    run = ok(run_image(plugin="faults", action=action, params=params, termination_log=True))
    assert run.exit_code == code
    assert run.result["exit_code"] == code
    if error_type:
        assert run.error["error_type"] == error_type and run.result["error"]["error_type"] == error_type
        assert json.loads(run.extra["termination_message"])["error_type"] == error_type


def test_storage_failure_is_exit_4(run_image: Any, s3_server: Any) -> None:
    bucket = s3_server.create_bucket()
    run = ok(run_image(plugin="faults", action="noop", network=s3_server.network,
                       env={**s3_server.container_env(), "SYNAPSE_CHECKPOINT": f"s3://{bucket}/no/such/key.zip"}))
    assert run.exit_code == 4
    assert run.error["error_type"] in ("StorageError", "ChecksumMismatchError") and "no/such/key.zip" in run.error["message"]
    assert SECRET_KEY not in run.stdout


def test_plugin_mounted_at_default_path(run_image: Any, tmp_path: Path) -> None:
    plugin = tmp_path / "myplugin"
    plugin.mkdir()
    (plugin / "config.yaml").write_text("name: mine\nactions:\n  hello: hello:hello\n")
    (plugin / "hello.py").write_text(
        "from synapse_sdk.plugins import action\n\n@action(name='hello')\ndef hello(params, ctx):\n"
        "    ctx.log_message('hi from a mounted plugin', 'success')\n    return {'ok': True}\n")
    plugin.chmod(0o755)
    run = ok(run_image(plugin_dir=plugin))
    assert run.exit_code == 0 and run.value == {"ok": True}
    assert run.events[0]["plugin"] == "mine"


def test_sigterm_cancels_rolls_back_within_grace(run_image: Any) -> None:
    running = run_image.start(plugin="faults", action="slow", params={"seconds": 60, "steps": 3},
                              termination_log=True)
    running.wait_for_event(lambda e: e["type"] == "event" and e["data"].get("name") == "step1", timeout=60)
    running.wait_for_event(lambda e: e["type"] == "progress" and e["category"] == "step2", timeout=60)
    t0 = time.monotonic()
    running.kill("SIGTERM")
    run = ok(running.wait(timeout=30))
    assert time.monotonic() - t0 < 5
    assert run.exit_code == 143 and run.end["status"] == "cancelled"
    assert run.result["status"] == "cancelled" and run.result["exit_code"] == 143
    rolled = [e["step"] for e in map(json.loads, (run.output_dir / "rollback.jsonl").read_text().splitlines()) if "phase" not in e]
    assert rolled == ["step2", "step1"]
    assert json.loads(run.extra["termination_message"])["status"] == "cancelled"


def test_containers_sharing_a_cache_volume_download_once(run_image: Any, s3_server: Any, docker_volume: Any,
                                                         trained: Path) -> None:
    bucket = s3_server.create_bucket()
    payload = io.BytesIO()
    blob = (trained / "model.zip").read_bytes() * 200  # ~1 MB+: long enough for the others to wait
    payload.write(blob)
    s3_server.client().put_object(Bucket=bucket, Key="big.bin", Body=blob)
    cache = docker_volume()
    starts = [
        run_image.start(plugin="faults", action="noop", network=s3_server.network,
                        env={**s3_server.container_env(), "SYNAPSE_CHECKPOINT": f"s3://{bucket}/big.bin"},
                        volumes={cache: {"bind": "/var/cache/synapse", "mode": "rw"}})
        for _ in range(4)
    ]
    runs = [ok(s.wait(timeout=120)) for s in starts]
    assert all(r.exit_code == 0 for r in runs), [r.events[-2:] for r in runs]
    fetched = [r for r in runs if any(not d["cached"] and d["bytes"] > 0 for d in r.of_type("download"))]
    assert len(fetched) == 1, [r.of_type("download") for r in runs]
    for r in runs:
        assert r.of_type("download")[-1]["total"] == len(blob)
