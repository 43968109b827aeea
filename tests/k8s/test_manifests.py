"""deploy/k8s: every manifest parsed into the official Kubernetes Python client's models, strictly (a
field the model does not know fails: the client itself would drop it silently), and the fields the
contract depends on asserted. With kubectl on PATH, every kustomization is also built (`kubectl
kustomize`, offline) and its output checked the same way.

`kubectl apply --dry-run=client` is not used: it needs an API server even with --validate=false
(discovery for the REST mapping, and the openapi document for validation), so it cannot run offline.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from synapse_runtime.errors import ExitCode

from .manifests import (
    DEPLOY,
    KUBECTL,
    KUSTOMIZATIONS,
    MANIFESTS,
    PLUGINS,
    ROOT,
    build,
    env_of,
    env_value,
    expand,
    field_path,
    jobs_in,
    kustomize,
    load_docs,
    quantity,
    raw_objects,
    require_kubectl,
    to_model,
)

GRACE_S = 120  # docs/kubernetes.md: rollback + result.json + output upload with its retries, then 143


# -- every file, every build -----------------------------------------------------------------------


def test_there_is_something_to_test() -> None:
    kinds = {o["kind"] for _, o in raw_objects()}
    assert {"Job", "PersistentVolumeClaim", "Secret", "JobSet", "StorageClass", "ServiceAccount"} <= kinds
    assert {p.relative_to(DEPLOY).as_posix() for p in KUSTOMIZATIONS} >= {
        ".", "job", "sharded", "merge", "rerun-shard", "base", "jobset", "examples/gpu", "examples/efs", "examples/production"}


def test_kubectl_is_there_under_ci() -> None:
    """Issue 12: the build checks skipped silently when kubectl was missing, CI included."""
    require_kubectl()


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_manifest_parses_into_client_models(path: Path) -> None:
    docs = load_docs(path.read_text())
    assert docs, f"{path} is empty"
    for doc in docs:
        model = to_model(doc, str(path))
        assert (model["metadata"] if isinstance(model, dict) else model.metadata.name)


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=lambda p: str(p.relative_to(DEPLOY)) or ".")
def test_kustomization_builds_into_client_models(directory: Path) -> None:
    objs = kustomize(directory)
    assert objs
    names: dict[str, set[str]] = {}
    for obj in objs:
        to_model(obj, str(directory))
        names.setdefault(obj["kind"], set()).add(obj["metadata"]["name"])
    # generated ConfigMaps are referenced by their hashed names; the Secret is never generated
    assert "Secret" not in names, "credentials are created from files, never committed in a kustomization"
    for _, job in jobs_in([(str(directory), o) for o in objs]):
        for vol in job.spec.template.spec.volumes:
            if vol.config_map is not None:
                assert vol.config_map.name in names.get("ConfigMap", set()), f"{vol.config_map.name} is not in the build"
            if vol.persistent_volume_claim is not None:
                pvcs = names.get("PersistentVolumeClaim")
                if pvcs is not None:
                    assert vol.persistent_volume_claim.claim_name in pvcs
        for c in job.spec.template.spec.containers:
            assert c.image == "synapse-runtime:dev" or "@sha256:" in c.image


def test_image_is_overridable_with_kustomize_images() -> None:
    digest = "sha256:" + "ab" * 32
    for name in ("job", "sharded", "merge", "jobset"):
        jobs = jobs_in([(name, o) for o in build([DEPLOY / name], images=[
            {"name": "synapse-runtime", "newName": "registry.example.com/ml/synapse-runtime", "digest": digest}])])
        assert jobs
        for _, job in jobs:
            assert [c.image for c in job.spec.template.spec.containers] == [f"registry.example.com/ml/synapse-runtime@{digest}"]


# -- what every Job must have ----------------------------------------------------------------------


def _all_jobs() -> list[tuple[str, Any]]:
    """Every Job: the files as written, every kustomization built, and every component over every Job it
    applies to (with kubectl; without it under CI, test_kubectl_is_there_under_ci fails)."""
    from .manifests import COMPONENTS

    objs = raw_objects()
    if KUBECTL:
        for d in KUSTOMIZATIONS:
            objs += [(f"{d.relative_to(ROOT)} (built)", o) for o in kustomize(d)]
        for c in COMPONENTS:
            for base in ("job", "sharded", "jobset", "rerun-shard"):
                objs += [(f"{base}+{c.name}", o) for o in build([DEPLOY / base], [c])]
    return jobs_in(objs)


JOBS = _all_jobs()


@pytest.fixture(params=JOBS, ids=[f"{w}:{j.metadata.name}" for w, j in JOBS])
def job(request: pytest.FixtureRequest) -> Any:
    return request.param[1]


def _is_action(job: Any) -> bool:
    return job.metadata.labels.get("app.kubernetes.io/component") != "merge"


ACTION_JOBS = [(w, j) for w, j in JOBS if _is_action(j)]


@pytest.fixture(params=ACTION_JOBS, ids=[f"{w}:{j.metadata.name}" for w, j in ACTION_JOBS])
def action_job(request: pytest.FixtureRequest) -> Any:
    """The Jobs that run an action (the merge Job runs `synapse-runtime merge`, no action)."""
    return request.param[1]


def test_pod_failure_policy_follows_exit_codes(job: Any) -> None:
    spec = job.spec
    assert spec.template.spec.restart_policy == "Never", "podFailurePolicy requires restartPolicy: Never"
    rules = spec.pod_failure_policy.rules
    by_action: dict[str, list[Any]] = {}
    for r in rules:
        by_action.setdefault(r.action, []).append(r)
    (fail,) = by_action["FailJob"]
    assert fail.on_exit_codes.operator == "In" and sorted(fail.on_exit_codes.values) == [2, 3]
    assert [ExitCode(v) for v in fail.on_exit_codes.values] == [ExitCode.INVALID_INPUT, ExitCode.NOT_FOUND]
    (count,) = by_action["Count"]
    assert count.on_exit_codes.operator == "In" and sorted(count.on_exit_codes.values) == [1, 4]
    (ignore,) = by_action["Ignore"]
    assert ignore.on_exit_codes is None
    assert [(c.type, c.status) for c in ignore.on_pod_conditions] == [("DisruptionTarget", "True")]
    container_names = {c.name for c in spec.template.spec.containers}
    for r in (fail, count):
        assert r.on_exit_codes.container_name in container_names
    # the never-retry codes are decided before anything else; the errors module agrees on which they are
    assert rules.index(fail) == 0
    from synapse_runtime.errors import RETRYABLE

    assert {c for c, retry in RETRYABLE.items() if retry is False} == {ExitCode(v) for v in fail.on_exit_codes.values}
    assert {c for c, retry in RETRYABLE.items() if retry is True} == {ExitCode(v) for v in count.on_exit_codes.values}
    if spec.backoff_limit_per_index is not None:
        # Issue 14 item 3: a backoffLimit beside backoffLimitPerIndex counts every shard's failures together
        # and, once exceeded, fails the Job and kills the healthy shards. maxFailedIndexes bounds it instead.
        assert spec.backoff_limit is None, "backoffLimit beside backoffLimitPerIndex: use maxFailedIndexes"
        assert spec.max_failed_indexes is not None and 0 <= spec.max_failed_indexes < spec.completions
    else:
        assert spec.backoff_limit is not None and 0 <= spec.backoff_limit <= 10


def test_security_context(job: Any) -> None:
    pod = job.spec.template.spec
    assert pod.security_context.run_as_non_root is True
    assert pod.security_context.run_as_user == 10001
    assert pod.security_context.fs_group == 10001
    assert pod.automount_service_account_token is False
    for c in pod.containers:
        sc = c.security_context
        assert sc.run_as_non_root is True and sc.run_as_user == 10001
        assert sc.read_only_root_filesystem is True
        assert sc.allow_privilege_escalation is False
        assert sc.capabilities.drop == ["ALL"] and not sc.capabilities.add
        assert sc.privileged in (None, False)


def test_termination_message_and_tmp(job: Any) -> None:
    pod = job.spec.template.spec
    volumes = {v.name: v for v in pod.volumes}
    for c in pod.containers:
        assert c.termination_message_path == "/dev/termination-log"
        assert c.termination_message_policy == "FallbackToLogsOnError"
        mounts = {m.mount_path: m for m in c.volume_mounts}
        tmp = volumes[mounts["/tmp"].name]
        assert tmp.empty_dir is not None, "/tmp is an emptyDir: the root filesystem is read-only"
        if env_value(c, "SYNAPSE_TERMINATION_LOG") is not None:
            assert env_value(c, "SYNAPSE_TERMINATION_LOG") == c.termination_message_path


def test_env_references_are_defined_before_use(job: Any) -> None:
    """$(VAR) expands only for variables defined earlier in the list (else it stays literal)."""
    for c in job.spec.template.spec.containers:
        seen: set[str] = set()
        for e in c.env or []:
            for ref in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", e.value or ""):
                assert ref in seen, f"{e.name} uses $({ref}) before it is defined"
            seen.add(e.name)


def test_no_secret_in_env(job: Any) -> None:
    for c in job.spec.template.spec.containers:
        for e in c.env or []:
            assert e.value_from is None or e.value_from.secret_key_ref is None, f"{e.name}: secrets are files, not env"
        for src in c.env_from or []:
            assert src.secret_ref is None


def test_action_job_pod_view(action_job: Any) -> None:
    job = action_job
    pod = job.spec.template.spec
    assert pod.termination_grace_period_seconds == GRACE_S
    (c,) = pod.containers
    volumes = {v.name: v for v in pod.volumes}
    mounts = {m.mount_path: m for m in c.volume_mounts}
    # params: the ConfigMap's params.json, mounted read-only as a directory; the runtime is pointed at it
    params_file = env_value(c, "SYNAPSE_ACTION_PARAMS_FILE")
    params_mount = mounts[str(Path(params_file).parent)]
    assert params_mount.read_only is True and params_mount.mount_path.startswith("/mnt/synapse/")
    cm = volumes[params_mount.name].config_map
    assert cm is not None and Path(params_file).name in [i.path for i in cm.items or []] + ["params.json"]
    # credentials: a Secret, as files, read-only, readable by fsGroup
    secrets = mounts["/mnt/synapse/secrets"]
    assert secrets.read_only is True
    secret = volumes[secrets.name].secret
    assert secret is not None and secret.secret_name == "synapse-credentials"
    assert secret.default_mode & 0o040 and not secret.default_mode & 0o007
    assert env_value(c, "SYNAPSE_SECRET_DIR") in (None, "/mnt/synapse/secrets")
    # cache on its claim, or on the node's disk (components/node-local-cache); output on a claim
    cache = volumes[mounts["/var/cache/synapse"].name]
    assert (cache.persistent_volume_claim and cache.persistent_volume_claim.claim_name == "synapse-cache") or \
        (cache.host_path and cache.host_path.path == "/var/cache/synapse" and cache.host_path.type == "Directory")
    output = volumes[mounts["/mnt/output"].name]
    uri = env_value(c, "SYNAPSE_OUTPUT_URI")
    assert output.persistent_volume_claim is not None or (uri and uri.startswith("s3://") and output.empty_dir is not None)
    assert expand(c, env_value(c, "SYNAPSE_OUTPUT_DIR"), job.metadata.name).startswith("/mnt/output/")
    assert field_path(c, "SYNAPSE_JOB_ID") in (None, "metadata.labels['job-name']", "metadata.labels['jobset.sigs.k8s.io/jobset-name']")
    assert "memory" in c.resources.limits
    # the plugin and action exist in the image (the examples are baked under /opt/synapse/plugins)
    plugin_dir = env_value(c, "SYNAPSE_PLUGIN_DIR")
    assert plugin_dir.startswith("/opt/synapse/plugins/")
    config = yaml.safe_load((PLUGINS / Path(plugin_dir).name / "config.yaml").read_text())
    assert env_value(c, "SYNAPSE_ACTION") in config["actions"]


def _gpus(c: Any) -> int:
    return int((c.resources.limits or {}).get("nvidia.com/gpu", 0))


def test_gpu_only_when_asked_for(job: Any) -> None:
    """Issue 14 item 6: CPU by default (a stock cluster schedules it); with a GPU, the toleration and the
    device plugin's own NVIDIA_VISIBLE_DEVICES; without one, no GPU visible (the image says `all`)."""
    pod = job.spec.template.spec
    (c,) = pod.containers
    tolerates_gpu = any(t.key == "nvidia.com/gpu" for t in pod.tolerations or [])
    if _gpus(c):
        assert _gpus(c) == 1 and tolerates_gpu
        assert "NVIDIA_VISIBLE_DEVICES" not in env_of(c)
        # item 8: Guaranteed memory, so memory pressure evicts this pod last
        assert quantity(c.resources.requests["memory"]) == quantity(c.resources.limits["memory"])
    else:
        assert not tolerates_gpu, "a CPU pod has no business on GPU nodes"
        assert env_value(c, "NVIDIA_VISIBLE_DEVICES") == "void"


def test_resources_cover_memory_volumes_and_node_disk(job: Any) -> None:
    """Issue 14 item 8: /dev/shm (a Memory emptyDir) counts against the memory limit, and disk emptyDirs
    against ephemeral storage: both are budgeted, not discovered by an eviction."""
    pod = job.spec.template.spec
    (c,) = pod.containers
    memory_volumes = sum(quantity(v.empty_dir.size_limit) for v in pod.volumes if v.empty_dir and v.empty_dir.medium == "Memory")
    disk_volumes = sum(quantity(v.empty_dir.size_limit) for v in pod.volumes if v.empty_dir and v.empty_dir.medium != "Memory")
    assert quantity(c.resources.limits["memory"]) >= memory_volumes + 2**30, "the working set needs room beside /dev/shm"
    assert quantity(c.resources.requests["memory"]) <= quantity(c.resources.limits["memory"])
    for v in pod.volumes:
        if v.empty_dir is not None:
            assert v.empty_dir.size_limit, f"emptyDir {v.name} without sizeLimit"
    request = quantity(c.resources.requests.get("ephemeral-storage", 0))
    assert request >= disk_volumes, f"ephemeral-storage request {request} < emptyDirs {disk_volumes}"
    if "ephemeral-storage" in (c.resources.limits or {}):
        assert quantity(c.resources.limits["ephemeral-storage"]) >= request


RECOMMENDED_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component",
                      "app.kubernetes.io/part-of")


def test_pod_templates_carry_the_recommended_labels(job: Any) -> None:
    labels = job.spec.template.metadata.labels or {}
    missing = [k for k in RECOMMENDED_LABELS if not labels.get(k)]
    assert not missing, f"pod template lacks {missing}"
    assert labels["app.kubernetes.io/name"] == "synapse-runtime"


def test_no_mutable_tag_pulled_if_not_present(job: Any) -> None:
    """A mutable tag with IfNotPresent runs whatever each node pulled first. Allowed: a digest, or the
    local development image synapse-runtime:dev (kind/minikube load it; it is never pulled)."""
    for c in job.spec.template.spec.containers:
        if c.image_pull_policy in (None, "IfNotPresent"):
            assert "@sha256:" in c.image or c.image == "synapse-runtime:dev", f"{c.image} with IfNotPresent"


def test_shards_record_their_run(job: Any) -> None:
    """Issue 14 item 1: every shard knows its run (the Job's or JobSet's uid), so a merge can tell a stale shard."""
    (c,) = job.spec.template.spec.containers
    if env_value(c, "SYNAPSE_SHARD_COUNT") is None:
        return
    assert field_path(c, "SYNAPSE_RUN_ID") in ("metadata.labels['batch.kubernetes.io/controller-uid']",
                                                 "metadata.labels['jobset.sigs.k8s.io/jobset-uid']") \
        or env_value(c, "SYNAPSE_RUN_ID") == "__RUN_ID__"


def test_the_strict_check_catches_misspelled_fields() -> None:
    (doc,) = load_docs((DEPLOY / "job" / "job.yaml").read_text())
    doc["spec"]["podFailurePolicy"]["rules"][0]["onExitCode"] = doc["spec"]["podFailurePolicy"]["rules"][0].pop("onExitCodes")
    with pytest.raises(AssertionError, match="onExitCode"):
        to_model(doc, "mutated")
    (doc,) = load_docs((DEPLOY / "job" / "job.yaml").read_text())
    doc["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFS"] = True
    with pytest.raises(AssertionError, match="readOnlyRootFS"):
        to_model(doc, "mutated")
