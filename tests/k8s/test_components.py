"""deploy/k8s's components, examples, the JobSet and wait-job.sh (issue 14): each built with `kubectl kustomize`
and checked for what it promises; wait-job.sh run against a stand-in kubectl that reports a Job's conditions.

The per-Job rules (security, failure policy, resources, labels, image policy) apply to every build here too:
tests/k8s/test_manifests.py builds every component over every Job it applies to.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from .manifests import COMPONENTS, DEPLOY, ROOT, build, env_value, field_path, jobs_in, kustomize

DOCS = ROOT / "docs" / "kubernetes.md"
COMPONENT = {c.name: c for c in COMPONENTS}


def _jobs(objs: list[dict]) -> dict[str, Any]:
    return {job.metadata.name: job for _, job in jobs_in([("build", o) for o in objs])}


def _kind(objs: list[dict], kind: str) -> list[dict]:
    return [o for o in objs if o["kind"] == kind]


def test_every_component_is_known() -> None:
    assert set(COMPONENT) == {"gpu", "storage-class", "node-local-cache", "kueue", "workload-identity"}


# -- the JobSet: the merge depends on the shards -----------------------------------------------------------


def test_jobset_merge_depends_on_the_shards_and_both_know_the_run() -> None:
    objs = kustomize(DEPLOY / "jobset")
    (js,) = _kind(objs, "JobSet")
    assert not _kind(objs, "Job"), "the JobSet runs the shards: no separate Indexed Job"
    shards, merge = js["spec"]["replicatedJobs"]
    assert (shards["name"], merge["name"]) == ("shards", "merge")
    assert merge["dependsOn"] == [{"name": "shards", "status": "Complete"}]
    assert js["spec"]["successPolicy"] == {"operator": "All", "targetReplicatedJobs": ["merge"]}
    jobs = _jobs(objs)
    sc = jobs["synapse-digits-infer-shards-0"].spec.template.spec.containers[0]
    mc = jobs["synapse-digits-infer-merge-0"].spec.template.spec.containers[0]
    for c in (sc, mc):
        assert field_path(c, "SYNAPSE_RUN_ID") == "metadata.labels['jobset.sigs.k8s.io/jobset-uid']"
        assert field_path(c, "SYNAPSE_JOB_ID") == "metadata.labels['jobset.sigs.k8s.io/jobset-name']"
    assert mc.args == ["merge", "/mnt/output/runs/$(SYNAPSE_JOB_ID)", "--run-id", "$(SYNAPSE_RUN_ID)"]
    assert env_value(sc, "SYNAPSE_OUTPUT_DIR") == "/mnt/output/runs/$(SYNAPSE_JOB_ID)"
    # the ConfigMap's hashed name reaches the JobSet (kustomizeconfig.yaml)
    (cm,) = _kind(objs, "ConfigMap")
    volumes = {v.name: v for v in jobs["synapse-digits-infer-shards-0"].spec.template.spec.volumes}
    assert volumes["params"].config_map.name == cm["metadata"]["name"] != "synapse-shard-params"


def test_jobset_shards_are_the_indexed_job() -> None:
    """The JobSet's shard Job is deploy/k8s/sharded's Indexed Job but for the two labels that name the run:
    one pod template to maintain, checked here so the two cannot drift apart."""
    indexed = next(o for o in kustomize(DEPLOY / "sharded") if o["kind"] == "Job")
    (js,) = _kind(kustomize(DEPLOY / "jobset"), "JobSet")
    shard_spec = js["spec"]["replicatedJobs"][0]["template"]["spec"]
    a, b = dict(indexed["spec"]), dict(shard_spec)
    a_pod, b_pod = a.pop("template"), b.pop("template")
    a.pop("ttlSecondsAfterFinished")  # the JobSet's own TTL covers its Jobs
    assert a == b
    a_pod, b_pod = yaml.safe_load(yaml.safe_dump(a_pod)), yaml.safe_load(yaml.safe_dump(b_pod))
    a_env = {e["name"]: e for e in a_pod["spec"]["containers"][0].pop("env")}
    b_env = {e["name"]: e for e in b_pod["spec"]["containers"][0].pop("env")}
    assert a_pod["spec"] == b_pod["spec"]
    assert set(a_env) == set(b_env)
    differ = sorted(k for k in a_env if a_env[k] != b_env[k])
    assert differ == ["SYNAPSE_JOB_ID", "SYNAPSE_RUN_ID"]


def test_merge_jobs_need_no_gpu_under_the_gpu_component() -> None:
    for base in ("jobset", "merge"):
        jobs = _jobs(build([DEPLOY / base], [COMPONENT["gpu"]]))
        merge = next(j for n, j in jobs.items() if "merge" in n)
        (c,) = merge.spec.template.spec.containers
        assert "nvidia.com/gpu" not in (c.resources.limits or {}) and env_value(c, "NVIDIA_VISIBLE_DEVICES") == "void"


def test_gpu_component_gives_every_action_pod_one_gpu() -> None:
    for base in ("job", "sharded", "jobset", "rerun-shard"):
        jobs = _jobs(build([DEPLOY / base], [COMPONENT["gpu"]]))
        actions = [j for n, j in jobs.items() if "merge" not in n]
        assert actions
        for job in actions:
            (c,) = job.spec.template.spec.containers
            assert int(c.resources.limits["nvidia.com/gpu"]) == 1, f"{base}: {job.metadata.name}"
            assert c.resources.requests["memory"] == c.resources.limits["memory"]


# -- storage -------------------------------------------------------------------------------------------------


def test_storage_class_component_names_a_class_for_every_claim() -> None:
    for base in ("job", "sharded", "jobset"):
        claims = _kind(build([DEPLOY / base], [COMPONENT["storage-class"]]), "PersistentVolumeClaim")
        assert {c["metadata"]["name"] for c in claims} == {"synapse-cache", "synapse-output"}
        assert {c["spec"]["storageClassName"] for c in claims} == {"synapse-rwx"}
        assert all(c["spec"]["accessModes"] == ["ReadWriteMany"] for c in claims)


def test_efs_example_owns_files_as_the_image_user() -> None:
    """EFS applies no fsGroup: the access point's uid/gid must be the image's user, or /mnt/output is not writable."""
    objs = kustomize(DEPLOY / "examples" / "efs")
    (sc,) = _kind(objs, "StorageClass")
    assert sc["provisioner"] == "efs.csi.aws.com" and sc["parameters"]["provisioningMode"] == "efs-ap"
    job = next(iter(_jobs(objs).values()))
    security = job.spec.template.spec.security_context
    assert (sc["parameters"]["uid"], sc["parameters"]["gid"]) == (str(security.run_as_user), str(security.run_as_group)) == ("10001", "10001")
    assert {c["spec"]["storageClassName"] for c in _kind(objs, "PersistentVolumeClaim")} == {sc["metadata"]["name"]}


def test_no_storage_class_mounts_without_server_locks() -> None:
    """The shared cache needs flock to reach the server: nolock / local_lock make it per node."""
    for path in DEPLOY.rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") in ("StorageClass", "PersistentVolume"):
                options = " ".join(doc.get("mountOptions") or doc.get("spec", {}).get("mountOptions") or [])
                assert not re.search(r"\b(nolock|local_lock=(all|flock))\b", options), f"{path}: {options}"


def test_node_local_cache_keeps_outputs_shared() -> None:
    for base in ("job", "sharded", "jobset"):
        objs = build([DEPLOY / base], [COMPONENT["node-local-cache"]])
        assert [c["metadata"]["name"] for c in _kind(objs, "PersistentVolumeClaim")] == ["synapse-output"]
        for name, job in _jobs(objs).items():
            volumes = {v.name: v for v in job.spec.template.spec.volumes}
            assert volumes["output"].persistent_volume_claim.claim_name == "synapse-output", name
            if "cache" in volumes:
                cache = volumes["cache"]
                assert cache.persistent_volume_claim is None and cache.host_path.path == "/var/cache/synapse", name
                assert cache.host_path.type == "Directory", "a missing directory must hold the pod, not run it cacheless"


# -- what platform teams run --------------------------------------------------------------------------------


def test_kueue_component_queues_every_workload() -> None:
    for base in ("job", "sharded", "jobset", "merge"):
        objs = build([DEPLOY / base], [COMPONENT["kueue"]])
        workloads = [o for o in objs if o["kind"] in ("Job", "JobSet")]
        assert workloads
        for o in workloads:
            assert o["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "synapse"
    (lq,) = yaml.safe_load_all((COMPONENT["kueue"] / "localqueue.example.yaml").read_text())
    assert lq["metadata"]["name"] == "synapse" and lq["spec"]["clusterQueue"]


def test_workload_identity_replaces_static_keys() -> None:
    for base in ("job", "sharded", "jobset"):
        objs = build([DEPLOY / base], [COMPONENT["workload-identity"]])
        (sa,) = _kind(objs, "ServiceAccount")
        annotations = sa["metadata"]["annotations"]
        assert {"eks.amazonaws.com/role-arn", "iam.gke.io/gcp-service-account", "azure.workload.identity/client-id"} <= set(annotations)
        for name, job in _jobs(objs).items():
            pod = job.spec.template.spec
            if "merge" in name:
                assert pod.service_account_name is None, "the merge touches no bucket"
                continue
            assert pod.service_account_name == sa["metadata"]["name"], name
            assert job.spec.template.metadata.labels["azure.workload.identity/use"] == "true"
            for c in pod.containers:
                assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & {e.name for e in c.env or []}


def test_production_example_pins_the_image_by_digest() -> None:
    objs = kustomize(DEPLOY / "examples" / "production")
    for job in _jobs(objs).values():
        for c in job.spec.template.spec.containers:
            assert re.fullmatch(r"[a-z0-9.\-/]+@sha256:[0-9a-f]{64}", c.image), c.image
    (js,) = _kind(objs, "JobSet")
    assert js["metadata"]["labels"]["kueue.x-k8s.io/queue-name"]


# -- wait-job.sh: returns on Failed too ---------------------------------------------------------------------

WAIT = DEPLOY / "wait-job.sh"


def _fake_kubectl(tmp_path: Path, conditions: str, failed_indexes: str = "") -> Path:
    """A kubectl that answers `get` from files, as the API server would for the Job's status."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (tmp_path / "conditions").write_text(conditions)
    (tmp_path / "failed").write_text(failed_indexes)
    script = bin_dir / "kubectl"
    script.write_text(f"""#!/bin/sh
echo "$@" >> {tmp_path}/calls
case "$*" in
  *failedIndexes*) cat {tmp_path}/failed ;;
  *'.type=="Failed"'*) printf 'PodFailurePolicy: Container synapse for pod ml/x-2 failed with exit code 2' ;;
  *) cat {tmp_path}/conditions ;;
esac
""")
    script.chmod(0o755)
    return bin_dir


def _wait(tmp_path: Path, bin_dir: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "WAIT_JOB_INTERVAL": "0.1"}
    return subprocess.run([str(WAIT), *args], capture_output=True, text=True, env=env, timeout=timeout)


def test_wait_returns_on_failed_with_the_indexes_to_rerun(tmp_path: Path) -> None:
    bin_dir = _fake_kubectl(tmp_path, "FailureTarget Failed ", "2,3")
    t0 = time.monotonic()
    out = _wait(tmp_path, bin_dir, "synapse-digits-infer-sharded", "1h", "-n", "ml")
    assert out.returncode == 1 and time.monotonic() - t0 < 10
    assert "failed indexes (rerun these shards): 2,3" in out.stderr and "exit code 2" in out.stderr
    assert "get job/synapse-digits-infer-sharded -n ml" in (tmp_path / "calls").read_text()


def test_wait_returns_on_complete_and_times_out_otherwise(tmp_path: Path) -> None:
    assert _wait(tmp_path, _fake_kubectl(tmp_path, "SuccessCriteriaMet Complete "), "x").returncode == 0
    assert _wait(tmp_path, _fake_kubectl(tmp_path, "Completed "), "jobset/x").returncode == 0
    out = _wait(tmp_path, _fake_kubectl(tmp_path, ""), "x", "1s")
    assert out.returncode == 2 and "neither complete nor failed" in out.stderr
    assert _wait(tmp_path, _fake_kubectl(tmp_path, ""), "x", "soon").returncode == 2


# -- the docs say it -----------------------------------------------------------------------------------------


def test_docs_never_wait_for_complete_alone() -> None:
    """Issue 14 item 9: `kubectl wait --for=condition=complete` never returns on a Failed Job."""
    for path in [DOCS, ROOT / "README.md", *DEPLOY.rglob("*.yaml")]:
        commands = re.findall(r"kubectl wait [^\n`]*--for=condition=complete[^\n`]*(?:job|jobset)/\S+", path.read_text())
        assert not commands, f"{path.relative_to(ROOT)}: {commands}: use deploy/k8s/wait-job.sh"


def test_docs_have_a_section_per_component_and_a_storage_table() -> None:
    text = DOCS.read_text()
    headings = re.findall(r"^#+ (.+)$", text, re.MULTILINE)
    for name in COMPONENT:
        assert any(f"components/{name}" in h for h in headings), f"no section for components/{name}"
    storage = text[text.index("## Storage"):]
    assert "| NFS" in storage and "nolock" in storage and "SYNAPSE_CACHE_LOCK_TIMEOUT" in storage
    for directory in ("jobset", "examples/efs", "examples/production", "examples/gpu"):
        assert f"deploy/k8s/{directory}" in text
