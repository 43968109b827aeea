"""deploy/k8s's sharded run as the manifests give it: the Indexed Job's shards tile the params, the rerun
Job and the merge point at its output and run, the documented `sed` makes a valid rerun Job, and the
output-uri overlay bounds its upload inside the grace period."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from synapse_runtime.errors import ValidationError
from synapse_runtime.contract.sharding import ShardSpec, apply_shard, shard_from_env

from .manifests import DEPLOY, env_of, env_value, expand, jobs_in, kustomize, load_docs, require_kubectl, to_model


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
    # the placeholders, left unsubstituted, are refused as invalid input (exit 2: FailJob)
    from synapse_runtime.contract.sharding import run_id_from_env

    with pytest.raises(ValidationError):
        shard_from_env({e.name: e.value for e in rc.env if e.value is not None})
    with pytest.raises(ValidationError):
        run_id_from_env({e.name: e.value for e in rc.env if e.value is not None})
    ok = {e.name: e.value for e in rc.env if e.value is not None} | {"SYNAPSE_SHARD_INDEX": "2"}
    assert shard_from_env(ok) == ShardSpec(2, indexed.spec.completions)
    merge = _raw_job("merge/merge-job.yaml")
    (mc,) = merge.spec.template.spec.containers
    assert mc.args[0] == "merge" and mc.args[1] == out
    assert "nvidia.com/gpu" not in (mc.resources.limits or {})


def test_rerun_build_substitutes_to_a_valid_job() -> None:
    kubectl = require_kubectl()
    built = subprocess.run([kubectl, "kustomize", str(DEPLOY / "rerun-shard")], capture_output=True, text=True, check=True).stdout
    sharded = {o["kind"]: o for o in kustomize(DEPLOY / "sharded")}
    run_id = "0b7c2e4a-9d51-4f3e-8a6b-2c1d0e9f8a7b"
    # what the documented sed does (docs/kubernetes.md and rerun-shard/job.yaml)
    out = subprocess.run(["sed", "-e", 's/__SHARD_INDEX__/"2"/', "-e", f's/__RUN_ID__/"{run_id}"/'],
                         input=built, capture_output=True, text=True, check=True).stdout
    objs = load_docs(out)
    assert [o["metadata"]["name"] for o in objs if o["kind"] == "Job"] == ["synapse-digits-infer-rerun"]
    cm = next(o for o in objs if o["kind"] == "ConfigMap")
    assert cm == sharded["ConfigMap"], "the rerun must read the very same params ConfigMap (same hash)"
    job = to_model(next(o for o in objs if o["kind"] == "Job"), "rerun-shard")
    (c,) = job.spec.template.spec.containers
    assert env_value(c, "SYNAPSE_SHARD_INDEX") == "2"
    assert env_value(c, "SYNAPSE_RUN_ID") == run_id
    from synapse_runtime.contract.sharding import run_id_from_env

    assert run_id_from_env({"SYNAPSE_RUN_ID": run_id}) == run_id


def test_output_uri_overlay() -> None:
    (job,) = [m for _, m in jobs_in([("overlay", o) for o in kustomize(DEPLOY / "overlays" / "output-uri")])]
    (c,) = job.spec.template.spec.containers
    uri = expand(c, env_value(c, "SYNAPSE_OUTPUT_URI"), job.metadata.name)
    assert uri == "s3://my-bucket/synapse/runs/synapse-digits-train/"
    volumes = {v.name: v for v in job.spec.template.spec.volumes}
    assert volumes["output"].empty_dir is not None and volumes["output"].persistent_volume_claim is None
    # the upload's bound after SIGTERM leaves room inside the grace period
    assert 0 < float(env_value(c, "SYNAPSE_CANCEL_UPLOAD_TIMEOUT")) < job.spec.template.spec.termination_grace_period_seconds


