"""The pods of deploy/k8s for real, under Docker: the runtime image with the env, mounts (projected
ConfigMap/Secret layout), user, read-only root filesystem, termination log and signals the manifests
give it (tests/k8s/podview.py reads them from the manifests).

* the train Job writes a checkpoint to the output "PVC";
* the Indexed Job's 4 pods run in parallel (JOB_COMPLETION_INDEX=0..3) over 60 held-out digits, and
  `synapse-runtime merge` (the merge Job's pod) gives the result of one unsharded container, item for item;
* a shard SIGKILLed mid-run leaves the set unmergeable (exit 2, the shard named) until the rerun-shard
  Job's pod runs it alone; then the set merges to the same result;
* the Indexed Job run again under the same name (a new Job uid) with one pod lost before it started:
  that shard's directory still holds the previous run's result, and the merge refuses it as another
  run's until the rerun (with this run's id) replaces it;
* SIGTERM with the manifest's grace period: rollback, result.json `cancelled`, termination message, 143;
* the output-uri overlay's pod SIGKILLed while its upload hangs on an endpoint that never answers: the
  termination message is there (written before the upload).

Skipped without Docker unless CI is set (then it fails). Needs the image (`make image`, or
$SYNAPSE_TEST_IMAGE). Every container and volume carries the label synapse-runtime-test=1 and is removed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from synapse_runtime.contract.merge import merge_results
from synapse_runtime.contract.sharding import ShardSpec, params_digest, shard_range

from .podview import IMAGE, PodFactory, docker, docker_available, job_uid, load_manifest

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "k8s"
SHARDS = 4
N_INPUTS = 60
SECRET_VALUE = "k8s-test-secret-value-4f1c9e"  # a dummy; must never show up in any output


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="module")
def engine() -> None:
    why = docker_available()
    if why is not None:
        if _ci():
            pytest.fail(f"Docker is required under CI=true: {why}", pytrace=False)
        pytest.skip(f"Docker is not available: {why}")
    if docker("image", "inspect", IMAGE, check=False).returncode != 0:
        pytest.fail(f"image {IMAGE} not found: build it with `make image` (or set SYNAPSE_TEST_IMAGE)", pytrace=False)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    d = tmp_path_factory.mktemp("k8s-pods")
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _pvc(root: Path, name: str) -> Path:
    d = root / name
    d.mkdir(parents=True)
    os.chown(d, 10001, 10001)  # what fsGroup does to a fresh claim
    d.chmod(0o2775)
    return d


@pytest.fixture(scope="module")
def cluster(engine: None, workdir: Path) -> Iterator[PodFactory]:
    """The two claims: output on a host directory (read back here), cache on a Docker volume."""
    factory = PodFactory(workdir / "pods", {})
    factory.claims["synapse-output"] = str(_pvc(workdir, "pvc-output"))
    factory.claims["synapse-cache"] = factory.volume("synapse-k8s-cache")
    try:
        yield factory
    finally:
        factory.close()


def _secrets() -> dict[str, dict[str, str]]:
    return {"synapse-credentials": {"AWS_ACCESS_KEY_ID": "AKIAK8STESTONLY", "AWS_SECRET_ACCESS_KEY": SECRET_VALUE}}


def _inputs() -> list[list[float]]:
    """60 held-out digits: the head of the split the train action validates on (seed 0, 20%)."""
    import numpy as np
    from sklearn.datasets import load_digits

    data = load_digits()
    order = np.random.default_rng(0).permutation(len(data.data))
    return data.data[order[:N_INPUTS]].tolist()


def _run(pod, timeout: float = 300) -> int:  # type: ignore[no-untyped-def]
    pod.start()
    return pod.wait(timeout)


def _assert_clean(pod, code: int) -> None:  # type: ignore[no-untyped-def]
    logs = pod.logs()
    assert code == 0, f"{pod.name} exited {code}: {logs[-3000:]}"
    events = pod.events()
    assert events[-1]["type"] == "end" and events[-1]["exit_code"] == 0
    assert SECRET_VALUE not in logs


@pytest.fixture(scope="module")
def checkpoint(cluster: PodFactory) -> Path:
    """deploy/k8s/job: the train Job's pod, with its own params ConfigMap, writes the checkpoint."""
    manifest = load_manifest(DEPLOY / "job" / "job.yaml")
    params = (DEPLOY / "job" / "params.json").read_text()
    pod = cluster.create(manifest, configmaps={"synapse-params": {"params.json": params}}, secrets=_secrets())
    code = _run(pod)
    _assert_clean(pod, code)
    out = Path(cluster.claims["synapse-output"]) / "runs" / manifest["metadata"]["name"]
    doc = json.loads((out / "result.json").read_text())
    assert doc["status"] == "succeeded" and doc["result"]["val_accuracy"] >= 0.9
    assert doc["job_id"] == manifest["metadata"]["name"]  # SYNAPSE_JOB_ID from the job-name label
    assert SECRET_VALUE not in (out / "result.json").read_text()
    message = pod.termination_message()
    assert message and message["status"] == "succeeded" and message["exit_code"] == 0
    return out / "checkpoint"


@pytest.fixture(scope="module")
def shard_params() -> str:
    return json.dumps({"inputs": _inputs(), "batch_size": 8})


@pytest.fixture(scope="module")
def reference(cluster: PodFactory, checkpoint: Path, shard_params: str) -> dict:
    """One unsharded container, same pod view otherwise: the result the shards must reproduce."""
    manifest = load_manifest(DEPLOY / "sharded" / "indexed-job.yaml")
    pod = cluster.create(
        manifest,
        job_name="reference",
        configmaps={"synapse-shard-params": {"params.json": shard_params}},
        secrets=_secrets(),
        env={"SYNAPSE_SHARD_COUNT": None, "SYNAPSE_SHARD_KEY": None},
    )
    code = _run(pod)
    _assert_clean(pod, code)
    out = Path(cluster.claims["synapse-output"]) / "runs" / "reference"
    assert not list(out.glob("shard-*")), "an unsharded run writes no shard directory"
    doc = json.loads((out / "result.json").read_text())
    assert doc["status"] == "succeeded" and "shard" not in doc["result"]
    assert len(doc["result"]["results"]) == N_INPUTS
    doc["predictions.jsonl"] = (out / "predictions.jsonl").read_text()
    return doc


def _indexed_pods(cluster: PodFactory, shard_params: str, job_name: str, run_id: str | None = None) -> list:  # type: ignore[type-arg]
    manifest = load_manifest(DEPLOY / "sharded" / "indexed-job.yaml")
    assert manifest["spec"]["completions"] == SHARDS == int(
        next(e["value"] for e in manifest["spec"]["template"]["spec"]["containers"][0]["env"] if e["name"] == "SYNAPSE_SHARD_COUNT")
    )
    return [
        cluster.create(
            manifest,
            job_name=job_name,
            configmaps={"synapse-shard-params": {"params.json": shard_params}},
            secrets=_secrets(),
            # what Kubernetes adds to pod i of an Indexed Job (and, for a Job created again, its new uid)
            env={"JOB_COMPLETION_INDEX": str(i), **({"SYNAPSE_RUN_ID": run_id} if run_id else {})},
            pod_suffix=str(i),
        )
        for i in range(SHARDS)
    ]


def _merge_in_pod(cluster: PodFactory, job_name: str) -> tuple[int, str]:
    """deploy/k8s/merge: the merge Job's pod (its args name the Indexed Job's output directory)."""
    manifest = load_manifest(DEPLOY / "merge" / "merge-job.yaml")
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    container["args"] = [a.replace("synapse-digits-infer-sharded", job_name) for a in container["args"]]
    pod = cluster.create(manifest, job_name=f"{job_name}-merge")
    code = _run(pod)
    return code, pod.logs()


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _same_as_reference(out: Path, reference: dict) -> None:
    merged = json.loads((out / "result.json").read_text())
    assert merged["status"] == "succeeded" and merged["exit_code"] == 0
    got, want = merged["result"], reference["result"]
    assert got["results"] == want["results"]  # same predictions and confidences, same order
    assert got["processed_count"] == want["processed_count"] == N_INPUTS
    assert (got["shards"], got["total"]) == (SHARDS, N_INPUTS)
    for k in ("success", "steps_executed", "steps_total"):
        assert got[k] == want[k], k
    assert (out / "predictions.jsonl").read_text() == reference["predictions.jsonl"]


def test_indexed_run_merges_to_the_unsharded_result(cluster: PodFactory, reference: dict, shard_params: str) -> None:
    job = "synapse-digits-infer-sharded"
    pods = _indexed_pods(cluster, shard_params, job)
    docker("start", *[p.name for p in pods])  # all at once, as the Job controller does with parallelism 4
    codes = [p.wait() for p in pods]
    for p, code in zip(pods, codes):
        _assert_clean(p, code)
    states = [p.state() for p in pods]
    # Ran side by side: the four lifetimes overlap (their sum exceeds the span from the first start to the last
    # finish). Not "all started before any finished": a 15-input shard can finish while the engine still starts
    # the fourth container on a 2-core machine.
    starts = [_ts(s["StartedAt"]) for s in states]
    ends = [_ts(s["FinishedAt"]) for s in states]
    assert sum(e - s for s, e in zip(starts, ends)) > max(ends) - min(starts), "the shards ran in parallel"

    out = Path(cluster.claims["synapse-output"]) / "runs" / job
    for i, p in enumerate(pods):
        spec = ShardSpec(i, SHARDS)
        doc = json.loads((out / spec.name / "result.json").read_text())
        rng = shard_range(N_INPUTS, spec)
        assert doc["result"]["shard"] == {"index": i, "count": SHARDS, "key": "inputs", "start": rng.start, "stop": rng.stop,
                                          "total": N_INPUTS, "run_id": p.env["SYNAPSE_RUN_ID"],
                                          "params_sha256": params_digest(json.loads(shard_params))}
        assert p.env["SYNAPSE_RUN_ID"] == job_uid(job)  # the controller-uid label, as the manifest maps it
        assert doc["result"]["processed_count"] == len(rng) == 15
        assert doc["job_id"] == job
        message = p.termination_message()
        assert message["status"] == "succeeded"
        assert SECRET_VALUE not in (out / spec.name / "result.json").read_text()
    assert not (out / "result.json").exists(), "shards write only under their shard-*/ directories"

    # the library's merge, and the merge Job's pod (the CLI in the image), agree with the unsharded run
    assert merge_results(out)["results"] == reference["result"]["results"]
    code, logs = _merge_in_pod(cluster, job)
    assert code == 0, logs[-3000:]
    _same_as_reference(out, reference)


def _cli_merge(out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "synapse_runtime", "merge", str(out)], capture_output=True, text=True, timeout=120)


def test_killed_shard_rerun_alone_completes_the_set(cluster: PodFactory, reference: dict, shard_params: str) -> None:
    job = "synapse-digits-infer-sharded"
    # a fresh output "PVC" for this round, so the Indexed Job's name (and so its directories) stay as deployed
    first = Path(cluster.claims["synapse-output"])
    second = _pvc(first.parent, "pvc-output-round2")
    shutil.copytree(first / "runs" / "synapse-digits-train", second / "runs" / "synapse-digits-train")  # the checkpoint
    for p in [second / "runs", *(second / "runs").rglob("*")]:
        os.chown(p, 10001, 10001)  # as the train pod left it
    cluster.claims["synapse-output"] = str(second)
    pods = _indexed_pods(cluster, shard_params, job)
    victim = 2
    docker("start", *[p.name for p in pods])
    # SIGKILL shard 2 once it is under way (its `start` event is out; the plugin is still loading)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and '"type":"start"' not in pods[victim].logs().replace(" ", ""):
        time.sleep(0.02)
    docker("kill", "-s", "KILL", pods[victim].name)
    codes = [p.wait() for p in pods]
    assert codes[victim] == 137, f"shard {victim} finished before the kill landed: {pods[victim].logs()[-1000:]}"
    for i, (p, code) in enumerate(zip(pods, codes)):
        if i != victim:
            _assert_clean(p, code)
    out = Path(cluster.claims["synapse-output"]) / "runs" / job
    victim_dir = out / ShardSpec(victim, SHARDS).name
    assert not (victim_dir / "result.json").exists(), "SIGKILL leaves no result.json"

    # the set does not merge: exit 2, the missing shard named
    cli = _cli_merge(out)
    assert cli.returncode == 2, cli.stdout + cli.stderr
    assert f"missing shards [{victim}]" in cli.stdout + cli.stderr
    code, logs = _merge_in_pod(cluster, job)
    assert code == 2 and f"missing shards [{victim}]" in logs
    assert not (out / "result.json").exists() or json.loads((out / "result.json").read_text())["status"] != "succeeded"

    # deploy/k8s/rerun-shard: shard 2 alone, as a plain Job with SYNAPSE_SHARD_INDEX
    rerun = load_manifest(DEPLOY / "rerun-shard" / "job.yaml")
    pod = cluster.create(
        rerun,
        configmaps={"synapse-shard-params": {"params.json": shard_params}},
        secrets=_secrets(),
        # the documented substitutions of __SHARD_INDEX__ and __RUN_ID__ (the Indexed Job's uid)
        env={"SYNAPSE_SHARD_INDEX": str(victim), "SYNAPSE_RUN_ID": pods[0].env["SYNAPSE_RUN_ID"]},
        pod_suffix="rerun",
    )
    _assert_clean(pod, _run(pod))
    assert json.loads((victim_dir / "result.json").read_text())["result"]["shard"]["index"] == victim

    cli = _cli_merge(out)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    summary = json.loads(cli.stdout.strip().splitlines()[-1])
    assert summary["shards"] == SHARDS and summary["total"] == N_INPUTS
    _same_as_reference(out, reference)


def test_sigterm_within_the_grace_period(cluster: PodFactory) -> None:
    """The Job's pod view with a slow action: SIGTERM (docker stop with the manifest's grace period) ends in
    a rollback, result.json `cancelled`, a termination message and exit 143, well inside the grace period."""
    manifest = load_manifest(DEPLOY / "job" / "job.yaml")
    params = json.dumps({"seconds": 60, "steps": 3})
    pod = cluster.create(
        manifest,
        job_name="synapse-faults-slow",
        configmaps={"synapse-params": {"params.json": params}},
        secrets=_secrets(),
        env={"SYNAPSE_PLUGIN_DIR": "/opt/synapse/plugins/faults", "SYNAPSE_ACTION": "slow"},
    )
    pod.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and '"category":"step1"' not in pod.logs().replace(" ", ""):
        time.sleep(0.05)
    t0 = time.monotonic()
    docker("stop", "--time", str(pod.grace), pod.name, timeout=pod.grace + 30)
    took = time.monotonic() - t0
    code = pod.wait()
    assert code == 143, pod.logs()[-2000:]
    assert took < min(pod.grace, 30), f"cancellation took {took:.1f}s"
    end = pod.events()[-1]
    assert end["type"] == "end" and end["status"] == "cancelled" and end["exit_code"] == 143
    out = Path(cluster.claims["synapse-output"]) / "runs" / "synapse-faults-slow"
    doc = json.loads((out / "result.json").read_text())
    assert doc["status"] == "cancelled" and doc["exit_code"] == 143
    assert not list(out.glob("*.marker")), "the steps that ran were rolled back"
    message = pod.termination_message()
    assert message["status"] == "cancelled" and message["exit_code"] == 143


def test_rerun_of_the_job_never_merges_a_stale_shard(cluster: PodFactory, reference: dict, shard_params: str) -> None:
    """Issue 14 item 1 with the pods themselves: the Indexed Job created again under its fixed name (a new
    uid), shard 2's pod lost before the runtime started. Its directory holds the previous run's succeeded
    result; the merge Job's pod refuses it as another run's, and merges once the rerun (this run's id) ran."""
    job = "synapse-digits-infer-sharded"
    out = Path(cluster.claims["synapse-output"]) / "runs" / job
    previous = json.loads((out / ShardSpec(2, SHARDS).name / "result.json").read_text())
    assert previous["status"] == "succeeded", "the previous run left a good shard 2"
    run_id = "7a0c9a52-0000-4000-8000-00000000a002"
    pods = _indexed_pods(cluster, shard_params, job, run_id=run_id)
    started = [p for i, p in enumerate(pods) if i != 2]
    docker("start", *[p.name for p in started])
    for p in started:
        _assert_clean(p, p.wait())
    code, logs = _merge_in_pod(cluster, job)
    assert code == 2, logs[-3000:]
    assert ShardSpec(2, SHARDS).name in logs and "run" in logs
    rerun = load_manifest(DEPLOY / "rerun-shard" / "job.yaml")
    pod = cluster.create(
        rerun,
        configmaps={"synapse-shard-params": {"params.json": shard_params}},
        secrets=_secrets(),
        env={"SYNAPSE_SHARD_INDEX": "2", "SYNAPSE_RUN_ID": run_id},
        pod_suffix="rerun2",
    )
    _assert_clean(pod, _run(pod))
    code, logs = _merge_in_pod(cluster, job)
    assert code == 0, logs[-3000:]
    assert json.loads((out / "result.json").read_text())["result"]["run_id"] == run_id
    _same_as_reference(out, reference)


SILENT_SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", 9000)); s.listen(16)
conns = []
while True:
    c, _ = s.accept(); conns.append(c); print("connected", flush=True)
"""


def test_termination_message_survives_sigkill_mid_upload(cluster: PodFactory, workdir: Path) -> None:
    """Issue 14 item 5 with the overlay's own pod: the upload hangs (an endpoint that accepts and never
    answers), the kubelet's SIGKILL comes at the end of the grace period; the termination message, written
    before the upload, says how the action ended."""
    from .manifests import KUBECTL, kustomize

    if KUBECTL is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("kubectl is required under CI=true (the overlay is a kustomize build)", pytrace=False)
        pytest.skip("kubectl not on PATH (the overlay is a kustomize build)")
    objs = kustomize(DEPLOY / "overlays" / "output-uri")
    manifest = next(o for o in objs if o["kind"] == "Job")
    configmap = next(o for o in objs if o["kind"] == "ConfigMap")
    silent = f"k8s-silent-s3-{uuid.uuid4().hex[:8]}"
    docker("run", "-d", "--name", silent, "--label", "synapse-runtime-test=1", "--entrypoint", "/opt/synapse/venv/bin/python3",
           IMAGE, "-c", SILENT_SERVER)
    cluster.containers.append(silent)  # removed with the rest
    ip = docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", silent).stdout.strip()
    assert ip, "the stand-in endpoint has no address on the default bridge"
    pod = cluster.create(
        manifest,
        job_name="synapse-text-upload",
        configmaps={configmap["metadata"]["name"]: {"params.json": json.dumps({"titles": ["Hello World"]})}},
        secrets=_secrets(),
        env={"SYNAPSE_PLUGIN_DIR": "/opt/synapse/plugins/text-tools", "SYNAPSE_ACTION": "slugify",
             "AWS_ENDPOINT_URL": f"http://{ip}:9000", "SYNAPSE_UPLOAD_TIMEOUT": "600"},
    )
    pod.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and "connected" not in docker("logs", silent, check=False).stdout:
        time.sleep(0.1)
    assert "connected" in docker("logs", silent).stdout, f"the upload never started: {pod.logs()[-2000:]}"
    docker("kill", "-s", "KILL", pod.name)
    assert pod.wait() == 137
    message = pod.termination_message()
    assert message is not None, "no termination message after a SIGKILL mid-upload"
    assert message["status"] == "succeeded" and message["exit_code"] == 0 and message["upload"] == "in progress"
    assert SECRET_VALUE not in pod.termination_log.read_text()
