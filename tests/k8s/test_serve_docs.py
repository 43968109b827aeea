"""docs/serving-kubernetes.md says what deploy/k8s/serve does: every file and component named, the numbers it
quotes equal to the manifests', the Ray pins equal to the RayService's rayVersion, the `deployment`
action's story told (exit 3 and what to run instead). A manifest change that the doc does not follow fails here.
"""

from __future__ import annotations

import re

from .manifests import ROOT, SERVE, SERVE_COMPONENTS, kustomize
from .serve_crds import serve_config

DOC = ROOT / "docs" / "serving-kubernetes.md"


def _text() -> str:
    return DOC.read_text(encoding="utf-8")


def _deployment() -> dict:
    return next(o for o in kustomize(SERVE) if o["kind"] == "Deployment")


def test_every_manifest_and_component_is_named() -> None:
    text = _text()
    for path in sorted(SERVE.rglob("*.yaml")):
        if path.name in ("kustomization.yaml", "kustomizeconfig.yaml") or path.parent.name in ("gpu",):
            continue
        rel = path.relative_to(ROOT).as_posix()
        assert rel in text or f"`{path.name}`" in text, f"{rel} is not described"
    for c in SERVE_COMPONENTS:
        assert f"components/{c.name}" in text
    for name in ("synapse_ray_app.py", "venv-path.sh", "deploy/k8s/serve/rayservice"):
        assert name in text
    assert "serving-kubernetes.md" in (ROOT / "docs" / "kubernetes.md").read_text(encoding="utf-8")


def test_the_quoted_numbers_are_the_manifests() -> None:
    text = _text()
    pod = _deployment()["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    grace, prestop, drain = pod["terminationGracePeriodSeconds"], c["lifecycle"]["preStop"]["sleep"]["seconds"], env["SYNAPSE_SERVE_DRAIN"]
    assert f"`terminationGracePeriodSeconds: {grace}`" in text
    assert f"`SYNAPSE_SERVE_DRAIN={drain}`" in text
    assert f"| preStop | `sleep` {prestop} s |" in text
    assert f"{prestop} (preStop) + {drain} (drain) + {grace - prestop - int(drain)} margin" in text
    assert f"`GET {c['livenessProbe']['httpGet']['path']}` every" in text and "Why liveness is not on `/-/healthz`" in text
    hpa = next(o for o in kustomize(SERVE) if o["kind"] == "HorizontalPodAutoscaler")["spec"]
    assert f"between {hpa['minReplicas']} and {hpa['maxReplicas']} replicas at {hpa['metrics'][0]['resource']['target']['averageUtilization']} %" in text


def test_ray_pins_match_the_rayservice() -> None:
    text = _text()
    rs = next(o for o in kustomize(SERVE / "rayservice") if o["kind"] == "RayService")
    version = rs["spec"]["rayClusterConfig"]["rayVersion"]
    assert f"ray[serve]=={version}" in text
    assert re.search(r"protobuf<7\b", text) and "fastapi<0.137" in text and "synapse-sdk==" in text
    assert f"port: {serve_config(rs)['http_options']['port']}" in text.replace("`http_options.port: ", "port: ")


def test_the_deployment_action_story_is_told() -> None:
    section = _text().split("## The `deployment` action", 1)[1]
    assert "exit 3" in section and "synapse-runtime serve" in section and "kubectl apply -k deploy/k8s/serve" in section
