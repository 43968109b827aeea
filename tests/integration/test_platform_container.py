"""The image as the Synapse platform runs it: models by id, job status reporting, GPU reporting,
and the pytest fixture plugin authors use.

The fake backend (tests/backend/backend_fake.py) listens on the host; containers on the test
network reach it through the network's gateway address, as a pod reaches a cluster service.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.backend.backend_fake import TOKEN, FakeBackend
from tests.conftest import check_stream
from tests.integration.test_contract import checkpoint_uri, ok, run_image_module, trained  # noqa: F401 - fixtures
from tests.secrets import register

pytestmark = pytest.mark.docker
register(TOKEN)

MODEL_ID = "4242"


@pytest.fixture(scope="module")
def backend(s3_server: Any, docker_client: Any) -> Iterator[tuple[FakeBackend, str]]:
    """The fake backend on all host interfaces, and its URL as containers on the test network see it."""
    server = FakeBackend(host="0.0.0.0")
    server.thread.start()
    gateway = docker_client.networks.get(s3_server.network).attrs["IPAM"]["Config"][0]["Gateway"]
    try:
        yield server, f"http://{gateway}:{server.server.server_address[1]}"
    finally:
        server.server.shutdown()
        server.server.server_close()


@pytest.fixture(scope="module")
def presigned_model(s3_server: Any, checkpoint_uri: str) -> str:  # noqa: F811 - the fixture above
    """A presigned https-style URL of the trained model, signed for the host name containers use."""
    import boto3
    from botocore.config import Config

    bucket, key = checkpoint_uri.removeprefix("s3://").split("/", 1)
    signer = boto3.client(
        "s3", endpoint_url=s3_server.internal_endpoint_url, region_name=s3_server.credentials["AWS_DEFAULT_REGION"],
        aws_access_key_id=s3_server.credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=s3_server.credentials["AWS_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
    )
    return signer.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=3600)


def _job(backend: FakeBackend, job_id: str) -> list[dict[str, Any]]:
    backend.jobs.setdefault(job_id, {"id": job_id, "status": "PENDING"})
    return backend.patches(job_id)


def _statuses(backend: FakeBackend, job_id: str) -> list[str]:
    return [p["status"] for p in backend.patches(job_id) if "status" in p]


def test_inference_loads_model_by_id_from_backend_and_reports_job(run_image: Any, s3_server: Any, backend: Any,
                                                                  presigned_model: str) -> None:
    server, url = backend
    server.models[MODEL_ID] = {"id": int(MODEL_ID), "name": "digits-softmax", "category": "neural_net",
                               "file": presigned_model, "configuration": {}}
    _job(server, "job-infer")
    run = ok(run_image(
        plugin="digits", action="infer", params={"model_id": MODEL_ID, "samples": 40, "batch_size": 8},
        env={"SYNAPSE_HOST": url, "SYNAPSE_JOB_ID": "job-infer"},
        env_dir={"SYNAPSE_ACCESS_TOKEN": TOKEN},  # a Secret volume, as deploy/k8s mounts it
        network=s3_server.network,
    ))
    assert run.exit_code == 0, run.events[-3:]
    assert run.value["processed_count"] == 40 and run.value["accuracy"] > 0.8
    gets = server.calls("GET", f"/models/{MODEL_ID}/")
    assert len(gets) == 1 and {k.lower(): v for k, v in gets[0].headers.items()}["synapse-access-token"] == f"Token {TOKEN}"
    statuses = _statuses(server, "job-infer")
    assert statuses[0] == "RUNNING" and statuses[-1] == "SUCCEEDED" and statuses.count("SUCCEEDED") == 1
    assert server.patches("job-infer")[-1]["result"]["processed_count"] == 40
    assert any("progress_record" in p for p in server.patches("job-infer"))
    downloads = run.of_type("download")
    assert downloads and downloads[-1]["bytes"] == downloads[-1]["total"]
    # The presigned query string is a credential too: the URI in events has no signature.
    assert "X-Amz-Signature" not in run.stdout + run.stderr + (run.output_dir / "result.json").read_text()
    assert TOKEN not in run.stdout + run.stderr


def test_failed_run_reports_failed(run_image: Any, s3_server: Any, backend: Any) -> None:
    server, url = backend
    _job(server, "job-fail")
    run = ok(run_image(plugin="faults", action="fail", params={"message": "bad luck"},
                       env={"SYNAPSE_HOST": url, "SYNAPSE_ACCESS_TOKEN": TOKEN, "SYNAPSE_JOB_ID": "job-fail"},
                       network=s3_server.network))
    assert run.exit_code == 1
    assert _statuses(server, "job-fail") == ["RUNNING", "FAILED"]
    assert server.patches("job-fail")[-1]["result"] == {"error": "bad luck"}


def test_cancelled_run_reports_stopped(run_image: Any, s3_server: Any, backend: Any) -> None:
    server, url = backend
    _job(server, "job-stop")
    running = run_image.start(plugin="faults", action="slow", params={"seconds": 30, "steps": 3},
                              env={"SYNAPSE_HOST": url, "SYNAPSE_ACCESS_TOKEN": TOKEN, "SYNAPSE_JOB_ID": "job-stop"},
                              network=s3_server.network)
    running.wait_for_event(lambda e: e["type"] == "progress" and e["category"] == "step1", timeout=60)
    running.kill("SIGTERM")
    run = ok(running.wait(timeout=30))
    assert run.exit_code == 143
    statuses = _statuses(server, "job-stop")
    assert statuses[0] == "RUNNING" and statuses[-1] == "STOPPED"


def test_backend_outage_never_fails_the_action(run_image: Any, s3_server: Any, backend: Any) -> None:
    server, url = backend
    _job(server, "job-outage")
    server.fail("PATCH", "/jobs/job-outage/", 503, times=100)
    run = ok(run_image(plugin="text-tools", action="wordcount", params={"text": "a b a"},
                       env={"SYNAPSE_HOST": url, "SYNAPSE_ACCESS_TOKEN": TOKEN, "SYNAPSE_JOB_ID": "job-outage"},
                       network=s3_server.network))
    assert run.exit_code == 0 and run.value["words"] == 3
    warnings = [e for e in run.of_type("message") if e.get("context") == "warning" and "backend" in e["message"]]
    # A warning event while the stream is open; the final report, after the end event, warns on stderr.
    assert warnings or "backend" in run.stderr, "the outage is reported"
    assert server.calls("PATCH", "/jobs/job-outage/"), "the runtime did try to report"


def test_offline_model_registry_file(run_image: Any, s3_server: Any, checkpoint_uri: str) -> None:  # noqa: F811
    registry = json.dumps({"digits-v1": {"name": "digits", "file": checkpoint_uri}})
    run = ok(run_image(
        plugin="digits", action="infer", params={"model_id": "digits-v1", "samples": 20},
        env={**s3_server.container_env(), "SYNAPSE_MODELS_FILE": "/mnt/synapse/models.json"},
        files={"/mnt/synapse/models.json": registry}, network=s3_server.network,
    ))
    assert run.exit_code == 0, run.events[-3:]
    assert run.value["processed_count"] == 20


def test_start_event_reports_cpu_fallback(run_image: Any) -> None:
    run = ok(run_image(plugin="faults", action="noop"))
    start = run.events[0]
    assert start["type"] == "start" and start["gpus"] == [] and start["device"] == "cpu"
    assert "running on CPU" in start["device_note"]


def test_start_event_reports_gpus_from_nvidia_smi(run_image: Any, tmp_path: Path) -> None:
    """What the start event says on a GPU node: nvidia-smi's answer, parsed (a stand-in binary, same CSV)."""
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho '0, NVIDIA H100 80GB HBM3, 81559, GPU-0f1e2d3c'\n"
                   "echo '1, NVIDIA H100 80GB HBM3, 81559, GPU-4b5a6978'\n")
    smi.chmod(0o755)
    run = ok(run_image(plugin="faults", action="noop",
                       volumes={str(smi): {"bind": "/usr/local/bin/nvidia-smi", "mode": "ro"}}))
    start = run.events[0]
    assert start["device"] == "cuda" and [g["name"] for g in start["gpus"]] == ["NVIDIA H100 80GB HBM3"] * 2
    assert start["gpus"][0]["memory_mb"] == 81559 and "2 GPU(s) via nvidia-smi" == start["device_note"]


def test_synapse_container_fixture_for_plugin_authors(synapse_container: Any, runtime_image: str,
                                                      tmp_path: Path) -> None:
    """The fixture a plugin author gets from `pip install synapse-runtime[test]`, on their own plugin."""
    plugin = tmp_path / "mine"
    (plugin / "mine").mkdir(parents=True)
    (plugin / "config.yaml").write_text("name: Mine\ncode: mine\nversion: 0.1.0\ncategory: custom\n"
                                        "actions:\n  greet:\n    entrypoint: mine.greet:greet\n")
    (plugin / "mine" / "__init__.py").write_text("")
    (plugin / "mine" / "greet.py").write_text(
        "from synapse_sdk.plugins import action\n\n"
        "@action(name='greet')\ndef greet(params: dict, ctx) -> dict:\n"
        "    print('a stray print, kept off stdout')\n"
        "    ctx.set_progress(1, 1, 'greet')\n"
        "    return {'hello': params.get('who', 'world')}\n")
    for p in [plugin, *plugin.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    r = synapse_container("mine", "greet", {"who": "synapse"}, plugin_dir=plugin, image=runtime_image)
    check_stream(r)
    assert r.exit_code == 0 and r.value == {"hello": "synapse"}
    assert r.result["status"] == "succeeded"
    assert [e["type"] for e in r.events][0] == "start" and r.events[-1]["type"] == "end"
    bad = synapse_container("mine", "nope", {}, plugin_dir=plugin, image=runtime_image)
    assert bad.exit_code == 3 and bad.error["error_type"]
