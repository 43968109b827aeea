"""Reading deploy/k8s for the tests: strict parsing into the official client's models, kustomize builds
(with components, through throwaway overlays), and the Jobs inside JobSets as plain Jobs.

`kubectl kustomize` is offline. Without kubectl the build checks skip, except under CI=true, where a
missing kubectl fails them (issue 12: they used to skip silently in CI).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ci import require_module

kubernetes = require_module("kubernetes", "pip install kubernetes (tests/k8s)")
from kubernetes import client as k8s  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "k8s"
PLUGINS = ROOT / "plugins"
KUBECTL = shutil.which("kubectl")


def _is_component(path: Path) -> bool:
    return (yaml.safe_load(path.read_text()) or {}).get("kind") == "Component"


_ALL_KUSTOMIZATIONS = sorted(DEPLOY.rglob("kustomization.yaml"))
#: Directories `kubectl kustomize` builds on their own (components only inside an overlay).
KUSTOMIZATIONS = sorted(p.parent for p in _ALL_KUSTOMIZATIONS if not _is_component(p))
#: Online serving (deploy/k8s/serve): its components patch the Deployment and the InferenceService, not Jobs.
SERVE = DEPLOY / "serve"
_ALL_COMPONENTS = sorted(p.parent for p in _ALL_KUSTOMIZATIONS if _is_component(p))
#: The Jobs' components (every one is built over every Job by test_manifests.py).
COMPONENTS = [c for c in _ALL_COMPONENTS if SERVE not in c.parents]
SERVE_COMPONENTS = [c for c in _ALL_COMPONENTS if SERVE in c.parents]
#: Patch files a kustomization names with `path:`, and kustomize configurations: fragments, not manifests.
PATCH_FILES = {
    (k.parent / p["path"]).resolve()
    for k in _ALL_KUSTOMIZATIONS
    for p in (yaml.safe_load(k.read_text()) or {}).get("patches", [])
    if isinstance(p, dict) and "path" in p
} | {
    (k.parent / c).resolve()
    for k in _ALL_KUSTOMIZATIONS
    for c in (yaml.safe_load(k.read_text()) or {}).get("configurations", [])
}
MANIFESTS = sorted(p for p in DEPLOY.rglob("*.yaml") if p.name != "kustomization.yaml" and p.resolve() not in PATCH_FILES)

#: Custom resources: no model in the client; their fields are checked by hand (and JobSet's Job templates
#: go through the Job models).
CRD_FIELDS = {
    ("jobset.x-k8s.io/v1alpha2", "JobSet"): {
        "spec": {"replicatedJobs", "successPolicy", "failurePolicy", "ttlSecondsAfterFinished", "suspend",
                 "network", "startupPolicy", "managedBy", "coordinator"},
        "replicatedJob": {"name", "replicas", "template", "dependsOn", "groupName"},
    },
    ("kueue.x-k8s.io/v1beta1", "LocalQueue"): {"spec": {"clusterQueue", "stopPolicy", "fairSharing"}},
}


def ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_kubectl() -> str:
    """kubectl's path; skip without it, or fail under CI=true (a build check must not vanish in CI)."""
    if KUBECTL is None:
        if ci():
            pytest.fail("kubectl is required under CI=true (apt-get install kubectl): the kustomize builds are not checked",
                        pytrace=False)
        pytest.skip("kubectl not on PATH (apt-get install kubectl/kubernetes-client)")
    return KUBECTL


_api = k8s.ApiClient()


class _Response:
    def __init__(self, obj: Any) -> None:
        self.data = json.dumps(obj)


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


def model_of(obj: dict, model: str, where: str) -> Any:
    parsed = _api.deserialize(_Response(obj), model)
    _check_known_fields(obj, _api.sanitize_for_serialization(parsed), where)
    return parsed


def _check_crd(obj: dict, where: str) -> None:
    fields = CRD_FIELDS[(obj["apiVersion"], obj["kind"])]
    model_of(obj["metadata"], "V1ObjectMeta", f"{where}.metadata")
    unknown = set(obj.get("spec", {})) - fields["spec"]
    assert not unknown, f"{where}: unknown spec fields {sorted(unknown)}"
    for i, rj in enumerate(obj.get("spec", {}).get("replicatedJobs", [])):
        assert not set(rj) - fields["replicatedJob"], f"{where}.replicatedJobs[{i}]: unknown {sorted(set(rj) - fields['replicatedJob'])}"
        model_of(rj["template"], "V1JobTemplateSpec", f"{where}.replicatedJobs[{i}].template")


#: Serving's custom resources, checked structurally by tests/k8s/serve_crds.py (no CRD schema offline).
SERVE_CRDS = {("serving.kserve.io/v1beta1", "InferenceService"), ("ray.io/v1", "RayService")}


def to_model(obj: dict, where: str = "") -> Any:
    """The object as the client's model (strict); custom resources checked field by field, returned as dicts."""
    if (obj.get("apiVersion"), obj.get("kind")) in SERVE_CRDS:
        from .serve_crds import check_crd  # here, not at the top: serve_crds uses model_of from this module

        check_crd(obj, f"{where}:{obj['kind']}")
        return obj
    if (obj.get("apiVersion"), obj.get("kind")) in CRD_FIELDS:
        _check_crd(obj, f"{where}:{obj['kind']}")
        return obj
    version = obj["apiVersion"].split("/")[-1]
    name = f"{version.capitalize()}{obj['kind']}"
    assert hasattr(k8s, name), f"{where}: no model {name} in the Kubernetes client"
    return model_of(obj, name, f"{where}:{obj['kind']}")


def load_docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def kustomize(directory: Path) -> list[dict]:
    kubectl = require_kubectl()
    out = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"kubectl kustomize {directory}: {out.stderr}"
    return load_docs(out.stdout)


def build(resources: list[Path], components: list[Path] = (), **extra: Any) -> list[dict]:  # type: ignore[assignment]
    """`kubectl kustomize` of a throwaway overlay naming ``resources`` and ``components`` (relative paths:
    kustomize refuses absolute ones)."""
    require_kubectl()
    with tempfile.TemporaryDirectory(prefix="synapse-overlay-") as tmp:
        overlay = Path(tmp)
        (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [os.path.relpath(r, overlay) for r in resources],
            "components": [os.path.relpath(c, overlay) for c in components],
            **extra,
        }))
        return kustomize(overlay)


def raw_objects() -> list[tuple[str, dict]]:
    return [(str(p.relative_to(ROOT)), d) for p in MANIFESTS for d in load_docs(p.read_text())]


def jobset_jobs(obj: dict) -> list[dict]:
    """A JobSet's replicated Jobs as the Job objects its controller creates (name <jobset>-<rj>-0)."""
    out = []
    for rj in obj["spec"]["replicatedJobs"]:
        template = rj["template"]
        meta = {**template.get("metadata", {}), "name": f"{obj['metadata']['name']}-{rj['name']}-0"}
        out.append({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": template["spec"],
                    "_jobset": obj["metadata"]["name"], "_replicated_job": rj["name"]})
    return out


def jobs_in(objs: list[tuple[str, dict]]) -> list[tuple[str, Any]]:
    """Every Job, a JobSet's included, as the client's V1Job."""
    jobs = []
    for where, o in objs:
        if o["kind"] == "Job":
            jobs.append((where, to_model(o, where)))
        elif o["kind"] == "JobSet":
            to_model(o, where)
            for j in jobset_jobs(o):
                plain = {k: v for k, v in j.items() if not k.startswith("_")}
                jobs.append((f"{where} [{j['_replicated_job']}]", to_model(plain, where)))
    return jobs


def env_of(container: Any) -> dict[str, Any]:
    return {e.name: e for e in container.env or []}


def env_value(container: Any, name: str) -> str | None:
    e = env_of(container).get(name)
    return None if e is None else e.value


def field_path(container: Any, name: str) -> str | None:
    e = env_of(container).get(name)
    return None if e is None or e.value_from is None else e.value_from.field_ref.field_path


def expand(container: Any, value: str, job_name: str) -> str:
    """Kubernetes' $(VAR) expansion, with SYNAPSE_JOB_ID = the job-name label's value."""
    env = {e.name: e.value for e in container.env or [] if e.value is not None}
    env.setdefault("SYNAPSE_JOB_ID", job_name)
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), value)


_QUANTITY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9}


def quantity(value: Any) -> int:
    m = re.fullmatch(r"(\d+)([A-Za-z]*)", str(value))
    assert m, value
    return int(m.group(1)) * _QUANTITY.get(m.group(2), 1)
