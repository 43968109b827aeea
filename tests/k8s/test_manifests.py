"""deploy/k8s: every manifest parsed into the official Kubernetes Python client's models, strictly (a
field the model does not know fails: the client itself would drop it silently), and the fields the
contract depends on asserted. With kubectl on PATH, every kustomization is also built (`kubectl
kustomize`, offline) and its output checked the same way.

`kubectl apply --dry-run=client` is not used: it needs an API server even with --validate=false
(discovery for the REST mapping, and the openapi document for validation), so it cannot run offline.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

kubernetes = pytest.importorskip("kubernetes", reason="pip install kubernetes (tests/k8s)")
from kubernetes import client as k8s  # noqa: E402

from synapse_runtime.errors import ExitCode, ValidationError  # noqa: E402
from synapse_runtime.sharding import ShardSpec, apply_shard, shard_from_env  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "k8s"
PLUGINS = ROOT / "plugins"
KUBECTL = shutil.which("kubectl")
KUSTOMIZATIONS = sorted(p.parent for p in DEPLOY.rglob("kustomization.yaml"))
MANIFESTS = sorted(p for p in DEPLOY.rglob("*.yaml") if p.name != "kustomization.yaml")
GRACE_S = 120  # docs/kubernetes.md: rollback + result.json + output upload with its retries, then 143

_api = k8s.ApiClient()


class _Response:
    def __init__(self, obj: Any) -> None:
        self.data = json.dumps(obj)


def _model_name(obj: dict) -> str:
    group_version = obj["apiVersion"]
    version = group_version.split("/")[-1]
    return f"{version.capitalize()}{obj['kind']}"


def _check_known_fields(original: Any, serialized: Any, where: str) -> None:
    """Every key of the manifest survived the round trip through the model: none unknown, none misspelled."""
    if isinstance(original, dict):
        assert isinstance(serialized, dict), f"{where}: expected an object"
        for key, value in original.items():
            if value is None:  # `field: null` in a patch
                continue
            assert key in serialized, f"{where}.{key}: not a field of the Kubernetes model (misspelled?)"
            _check_known_fields(value, serialized[key], f"{where}.{key}")
    elif isinstance(original, list):
        assert isinstance(serialized, list) and len(serialized) == len(original), f"{where}: list lost items"
        for i, (a, b) in enumerate(zip(original, serialized)):
            _check_known_fields(a, b, f"{where}[{i}]")
    else:
        assert str(serialized) == str(original) or serialized == original, f"{where}: {original!r} became {serialized!r}"


def to_model(obj: dict, where: str = "") -> Any:
    name = _model_name(obj)
    assert hasattr(k8s, name), f"{where}: no model {name} in the Kubernetes client"
    model = _api.deserialize(_Response(obj), name)
    _check_known_fields(obj, _api.sanitize_for_serialization(model), f"{where}:{obj['kind']}")
    return model


def load_docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def kustomize(directory: Path) -> list[dict]:
    assert KUBECTL
    out = subprocess.run([KUBECTL, "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"kubectl kustomize {directory}: {out.stderr}"
    return load_docs(out.stdout)


def raw_objects() -> list[tuple[str, dict]]:
    return [(str(p.relative_to(ROOT)), d) for p in MANIFESTS for d in load_docs(p.read_text())]


def jobs_in(objs: list[tuple[str, dict]]) -> list[tuple[str, Any]]:
    return [(where, to_model(o, where)) for where, o in objs if o["kind"] == "Job"]


def env_of(container: Any) -> dict[str, Any]:
    return {e.name: e for e in container.env or []}


def env_value(container: Any, name: str) -> str | None:
    e = env_of(container).get(name)
    return None if e is None else e.value


def expand(container: Any, value: str, job_name: str) -> str:
    """Kubernetes' $(VAR) expansion, with SYNAPSE_JOB_ID = the job-name label's value."""
    env = {e.name: e.value for e in container.env or [] if e.value is not None}
    env.setdefault("SYNAPSE_JOB_ID", job_name)
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), value)


# -- every file, every build -----------------------------------------------------------------------


def test_there_is_something_to_test() -> None:
    kinds = {o["kind"] for _, o in raw_objects()}
    assert {"Job", "PersistentVolumeClaim", "Secret"} <= kinds
    assert {p.relative_to(DEPLOY).as_posix() for p in KUSTOMIZATIONS} >= {".", "job", "sharded", "merge", "rerun-shard", "base"}


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_manifest_parses_into_client_models(path: Path) -> None:
    docs = load_docs(path.read_text())
    assert docs, f"{path} is empty"
    for doc in docs:
        model = to_model(doc, str(path))
        assert model.metadata.name


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not on PATH (apt-get install kubectl/kubernetes-client)")
@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=lambda p: str(p.relative_to(DEPLOY)) or ".")
def test_kustomization_builds_into_client_models(directory: Path) -> None:
    objs = kustomize(directory)
    assert objs
    names: dict[str, set[str]] = {}
    for obj in objs:
        model = to_model(obj, str(directory))
        names.setdefault(obj["kind"], set()).add(model.metadata.name)
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
            assert c.image == "synapse-runtime:dev"


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not on PATH")
def test_image_is_overridable_with_kustomize_images(tmp_path: Path) -> None:
    for name in ("job", "sharded", "merge"):
        overlay = tmp_path / name
        overlay.mkdir()
        (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [os.path.relpath(DEPLOY / name, overlay)],  # absolute roots are refused
            "images": [{"name": "synapse-runtime", "newName": "registry.example.com/ml/synapse-runtime", "newTag": "1.2.3"}],
        }))
        jobs = jobs_in([(name, o) for o in kustomize(overlay)])
        assert jobs
        for _, job in jobs:
            assert [c.image for c in job.spec.template.spec.containers] == ["registry.example.com/ml/synapse-runtime:1.2.3"]


# -- what every Job must have ----------------------------------------------------------------------


def _all_jobs() -> list[tuple[str, Any]]:
    objs = raw_objects()
    if KUBECTL:
        for d in KUSTOMIZATIONS:
            objs += [(f"{d.relative_to(ROOT)} (built)", o) for o in kustomize(d)]
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
    # cache and output on claims
    assert volumes[mounts["/var/cache/synapse"].name].persistent_volume_claim.claim_name == "synapse-cache"
    output = volumes[mounts["/mnt/output"].name]
    uri = env_value(c, "SYNAPSE_OUTPUT_URI")
    assert output.persistent_volume_claim is not None or (uri and uri.startswith("s3://") and output.empty_dir is not None)
    assert expand(c, env_value(c, "SYNAPSE_OUTPUT_DIR"), job.metadata.name).startswith("/mnt/output/")
    assert env_of(c)["SYNAPSE_JOB_ID"].value_from is None or \
        env_of(c)["SYNAPSE_JOB_ID"].value_from.field_ref.field_path == "metadata.labels['job-name']"
    # one GPU, as a limit
    assert c.resources.limits["nvidia.com/gpu"] in (1, "1")
    assert "memory" in c.resources.limits
    # the plugin and action exist in the image (the examples are baked under /opt/synapse/plugins)
    plugin_dir = env_value(c, "SYNAPSE_PLUGIN_DIR")
    assert plugin_dir.startswith("/opt/synapse/plugins/")
    config = yaml.safe_load((PLUGINS / Path(plugin_dir).name / "config.yaml").read_text())
    assert env_value(c, "SYNAPSE_ACTION") in config["actions"]


# -- the sharded run -------------------------------------------------------------------------------


def _raw_job(relative: str) -> Any:
    (doc,) = load_docs((DEPLOY / relative).read_text())
    return to_model(doc, relative)


def test_indexed_job_shards_by_completion_index() -> None:
    job = _raw_job("sharded/indexed-job.yaml")
    spec = job.spec
    assert spec.completion_mode == "Indexed"
    (c,) = spec.template.spec.containers
    assert int(env_value(c, "SYNAPSE_SHARD_COUNT")) == spec.completions >= 2
    assert 1 <= spec.parallelism <= spec.completions
    assert spec.backoff_limit_per_index is not None and spec.backoff_limit_per_index >= 1
    assert "SYNAPSE_SHARD_INDEX" not in env_of(c), "the index comes from JOB_COMPLETION_INDEX"
    assert (env_value(c, "SYNAPSE_PLUGIN_DIR"), env_value(c, "SYNAPSE_ACTION")) == ("/opt/synapse/plugins/digits", "infer")
    # each pod's environment as Kubernetes completes it gives shards 0..N-1, which tile the params' list
    key = env_value(c, "SYNAPSE_SHARD_KEY") or "inputs"
    params = json.loads((DEPLOY / "sharded" / "params.json").read_text())
    assert all(len(row) == 64 for row in params[key])
    slices = []
    for i in range(spec.completions):
        pod_env = {e.name: e.value for e in c.env if e.value is not None} | {"JOB_COMPLETION_INDEX": str(i)}
        shard = shard_from_env(pod_env)
        assert shard == ShardSpec(i, spec.completions)
        sharded, info = apply_shard(params, shard, key)
        slices += sharded[key]
    assert slices == params[key]
    # the checkpoint is what the train Job writes to the same volume
    train = _raw_job("job/job.yaml")
    (tc,) = train.spec.template.spec.containers
    assert env_value(c, "SYNAPSE_CHECKPOINT") == expand(tc, env_value(tc, "SYNAPSE_OUTPUT_DIR"), train.metadata.name) + "/checkpoint"


def test_rerun_and_merge_point_at_the_indexed_job_output() -> None:
    indexed = _raw_job("sharded/indexed-job.yaml")
    (ic,) = indexed.spec.template.spec.containers
    out = expand(ic, env_value(ic, "SYNAPSE_OUTPUT_DIR"), indexed.metadata.name)
    rerun = _raw_job("rerun-shard/job.yaml")
    (rc,) = rerun.spec.template.spec.containers
    assert rerun.spec.completion_mode in (None, "NonIndexed")
    assert expand(rc, env_value(rc, "SYNAPSE_OUTPUT_DIR"), rerun.metadata.name) == out
    assert env_value(rc, "SYNAPSE_SHARD_COUNT") == env_value(ic, "SYNAPSE_SHARD_COUNT")
    for name in ("SYNAPSE_PLUGIN_DIR", "SYNAPSE_ACTION", "SYNAPSE_CHECKPOINT", "SYNAPSE_SHARD_KEY", "SYNAPSE_ACTION_PARAMS_FILE"):
        assert env_value(rc, name) == env_value(ic, name), name
    # the placeholder, left unsubstituted, is refused as invalid input (exit 2: FailJob)
    with pytest.raises(ValidationError):
        shard_from_env({e.name: e.value for e in rc.env if e.value is not None})
    ok = {e.name: e.value for e in rc.env if e.value is not None} | {"SYNAPSE_SHARD_INDEX": "2"}
    assert shard_from_env(ok) == ShardSpec(2, indexed.spec.completions)
    merge = _raw_job("merge/merge-job.yaml")
    (mc,) = merge.spec.template.spec.containers
    assert mc.args[0] == "merge" and mc.args[1] == out
    assert "nvidia.com/gpu" not in (mc.resources.limits or {})


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not on PATH")
def test_rerun_build_substitutes_to_a_valid_job() -> None:
    out = subprocess.run([KUBECTL, "kustomize", str(DEPLOY / "rerun-shard")], capture_output=True, text=True, check=True).stdout
    sharded = {o["kind"]: o for o in kustomize(DEPLOY / "sharded")}
    objs = load_docs(out.replace("__SHARD_INDEX__", '"2"'))  # what the documented sed does
    assert [o["metadata"]["name"] for o in objs if o["kind"] == "Job"] == ["synapse-digits-infer-rerun"]
    cm = next(o for o in objs if o["kind"] == "ConfigMap")
    assert cm == sharded["ConfigMap"], "the rerun must read the very same params ConfigMap (same hash)"
    job = to_model(next(o for o in objs if o["kind"] == "Job"), "rerun-shard")
    (c,) = job.spec.template.spec.containers
    assert env_value(c, "SYNAPSE_SHARD_INDEX") == "2"


def test_output_uri_overlay() -> None:
    if KUBECTL is None:
        pytest.skip("kubectl not on PATH")
    (job,) = [m for _, m in jobs_in([("overlay", o) for o in kustomize(DEPLOY / "overlays" / "output-uri")])]
    (c,) = job.spec.template.spec.containers
    uri = expand(c, env_value(c, "SYNAPSE_OUTPUT_URI"), job.metadata.name)
    assert uri == "s3://my-bucket/synapse/runs/synapse-digits-train/"
    volumes = {v.name: v for v in job.spec.template.spec.volumes}
    assert volumes["output"].empty_dir is not None and volumes["output"].persistent_volume_claim is None


def test_the_strict_check_catches_misspelled_fields() -> None:
    (doc,) = load_docs((DEPLOY / "job" / "job.yaml").read_text())
    doc["spec"]["podFailurePolicy"]["rules"][0]["onExitCode"] = doc["spec"]["podFailurePolicy"]["rules"][0].pop("onExitCodes")
    with pytest.raises(AssertionError, match="onExitCode"):
        to_model(doc, "mutated")
    (doc,) = load_docs((DEPLOY / "job" / "job.yaml").read_text())
    doc["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFS"] = True
    with pytest.raises(AssertionError, match="readOnlyRootFS"):
        to_model(doc, "mutated")
