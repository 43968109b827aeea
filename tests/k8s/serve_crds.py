"""Structural checks for serving's custom resources: KServe's InferenceService and KubeRay's RayService.

No CRD schema is available offline (the suite reaches no cluster and vendors no third-party CRDs), so
these check what the CRDs require and what their controllers read, written from the CRDs' Go types
(kserve pkg/apis/serving/v1beta1, kuberay ray-operator/apis/ray/v1) and Ray Serve's config schema:
  * the top-level and spec fields, unknown ones refused (a misspelled field is dropped silently by the
    API server's pruning, and the resource then runs without it);
  * the required ones present (predictor; rayClusterConfig.headGroupSpec.template, a worker group's
    groupName and template; a Serve application's import_path);
  * every embedded pod through the official client's strict models (the predictor's inline PodSpec,
    the Ray groups' PodTemplateSpecs), so a misspelled pod field fails as it does for Jobs;
  * the types the API server would reject (rayStartParams is map[string]string; replica counts ints).
Each check raises AssertionError naming the field, like manifests.to_model.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from .manifests import k8s, model_of

#: KServe v1beta1 InferenceServiceSpec.
ISVC_SPEC = {"predictor", "explainer", "transformer"}
#: PredictorSpec = the model/framework specs + ComponentExtensionSpec + an inline PodSpec (checked by the model).
PREDICTOR_EXTENSION = {
    "minReplicas", "maxReplicas", "scaleTarget", "scaleMetric", "scaleMetricType", "autoScaling",
    "containerConcurrency", "timeout", "canaryTrafficPercent", "logger", "batcher", "labels", "annotations",
    "deploymentStrategy", "workerSpec", "storageUris", "rollout",
}
MODEL_SPECS = {"model", "sklearn", "xgboost", "tensorflow", "pytorch", "triton", "onnx", "huggingface", "pmml",
               "lightgbm", "paddle"}
PREDICTOR_EXTENSION |= MODEL_SPECS
SCALE_METRICS = {"cpu", "memory", "concurrency", "rps"}
DNS_1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")

#: KubeRay ray.io/v1.
RAYSERVICE_SPEC = {"serveConfigV2", "rayClusterConfig", "upgradeStrategy", "serviceUnhealthySecondThreshold",
                   "deploymentUnhealthySecondThreshold", "serveService", "excludeHeadPodFromServeSvc"}
RAYCLUSTER_SPEC = {"rayVersion", "headGroupSpec", "workerGroupSpecs", "enableInTreeAutoscaling",
                   "autoscalerOptions", "headServiceAnnotations", "suspend", "managedBy",
                   "gcsFaultToleranceOptions", "upgradeStrategy", "authOptions"}
HEAD_GROUP = {"template", "rayStartParams", "serviceType", "headService", "enableIngress", "resources", "labels"}
WORKER_GROUP = {"groupName", "replicas", "minReplicas", "maxReplicas", "rayStartParams", "template",
                "scaleStrategy", "numOfHosts", "idleTimeoutSeconds", "suspend", "resources", "labels"}
#: Ray Serve's config file (ServeDeploySchema, ServeApplicationSchema, DeploymentSchema).
SERVE_CONFIG = {"proxy_location", "http_options", "grpc_options", "logging_config", "applications", "target_capacity"}
HTTP_OPTIONS = {"host", "port", "root_path", "request_timeout_s", "keep_alive_timeout_s"}
SERVE_APP = {"name", "route_prefix", "import_path", "runtime_env", "host", "port", "deployments", "args",
             "logging_config", "external_scaler_enabled"}
SERVE_DEPLOYMENT = {"name", "num_replicas", "max_ongoing_requests", "max_queued_requests", "user_config",
                    "autoscaling_config", "graceful_shutdown_wait_loop_s", "graceful_shutdown_timeout_s",
                    "health_check_period_s", "health_check_timeout_s", "ray_actor_options",
                    "placement_group_bundles", "placement_group_strategy", "max_replicas_per_node",
                    "logging_config", "request_router_config"}
_POD_FIELDS = set(k8s.V1PodSpec.attribute_map.values())


def _only(obj: dict, allowed: set[str], where: str) -> None:
    assert isinstance(obj, dict), f"{where}: expected an object, got {type(obj).__name__}"
    unknown = sorted(set(obj) - allowed)
    assert not unknown, f"{where}: unknown fields {unknown}"


def _int(value: Any, where: str) -> int:
    assert isinstance(value, int) and not isinstance(value, bool), f"{where}: {value!r} is not an integer"
    return value


def check_inference_service(obj: dict, where: str) -> None:
    model_of(obj["metadata"], "V1ObjectMeta", f"{where}.metadata")
    assert DNS_1035.fullmatch(obj["metadata"]["name"]), f"{where}: KServe needs a DNS-1035 name"
    spec = obj.get("spec") or {}
    _only(spec, ISVC_SPEC, f"{where}.spec")
    assert "predictor" in spec, f"{where}.spec.predictor is required"
    predictor = spec["predictor"]
    extension = {k: v for k, v in predictor.items() if k not in _POD_FIELDS}
    _only(extension, PREDICTOR_EXTENSION, f"{where}.spec.predictor")
    for key in ("minReplicas", "maxReplicas", "scaleTarget", "canaryTrafficPercent", "containerConcurrency"):
        if key in predictor:
            _int(predictor[key], f"{where}.spec.predictor.{key}")
    if "minReplicas" in predictor and "maxReplicas" in predictor:
        assert 0 <= predictor["minReplicas"] <= predictor["maxReplicas"], f"{where}: minReplicas > maxReplicas"
    if "scaleMetric" in predictor:
        assert predictor["scaleMetric"] in SCALE_METRICS, f"{where}.spec.predictor.scaleMetric: {predictor['scaleMetric']!r}"
    if "deploymentStrategy" in predictor:
        model_of(predictor["deploymentStrategy"], "V1DeploymentStrategy", f"{where}.spec.predictor.deploymentStrategy")
    pod = {k: v for k, v in predictor.items() if k in _POD_FIELDS}
    if pod:
        model_of(pod, "V1PodSpec", f"{where}.spec.predictor (pod)")
    if not set(predictor) & MODEL_SPECS:
        # a custom predictor: the containers are the model server
        assert pod.get("containers"), f"{where}.spec.predictor: neither a model spec nor containers"
        names = [c.get("name") for c in pod["containers"]]
        assert "kserve-container" in names, f"{where}: a custom predictor's container is named kserve-container, got {names}"
        main = pod["containers"][names.index("kserve-container")]
        assert main.get("image"), f"{where}: kserve-container has no image"
        assert len(main.get("ports") or []) <= 1, f"{where}: KServe routes to one container port, got {main['ports']}"


def serve_config(obj: dict) -> dict:
    """A RayService's serveConfigV2, parsed (it is a YAML document inside a string)."""
    text = obj["spec"]["serveConfigV2"]
    assert isinstance(text, str), "serveConfigV2 is a string holding YAML (a `|` block), not an object"
    config = yaml.safe_load(text)
    assert isinstance(config, dict), "serveConfigV2 does not parse to a mapping"
    return config


def _check_serve_config(config: dict, where: str) -> None:
    _only(config, SERVE_CONFIG, where)
    _only(config.get("http_options") or {}, HTTP_OPTIONS, f"{where}.http_options")
    apps = config.get("applications")
    assert isinstance(apps, list) and apps, f"{where}.applications: at least one application"
    names = [a.get("name") for a in apps]
    assert len(set(names)) == len(names), f"{where}: application names repeat: {names}"
    prefixes = [a.get("route_prefix") for a in apps if a.get("route_prefix") is not None]
    assert len(set(prefixes)) == len(prefixes), f"{where}: route prefixes repeat: {prefixes}"
    for i, app in enumerate(apps):
        _only(app, SERVE_APP, f"{where}.applications[{i}]")
        assert re.fullmatch(r"[\w.\-]+[:.][\w.]+", str(app.get("import_path", ""))), \
            f"{where}.applications[{i}].import_path: module:attribute required"
        assert app.get("route_prefix", "/").startswith("/"), f"{where}.applications[{i}].route_prefix must start with /"
        for j, dep in enumerate(app.get("deployments") or []):
            _only(dep, SERVE_DEPLOYMENT, f"{where}.applications[{i}].deployments[{j}]")
            assert dep.get("name"), f"{where}.applications[{i}].deployments[{j}].name is required"


def _check_start_params(params: Any, where: str) -> None:
    assert isinstance(params, dict), f"{where}: an object"
    for key, value in params.items():
        assert isinstance(value, str), f"{where}.{key}: {value!r} must be a string (map[string]string)"


def check_ray_service(obj: dict, where: str) -> None:
    model_of(obj["metadata"], "V1ObjectMeta", f"{where}.metadata")
    spec = obj.get("spec") or {}
    _only(spec, RAYSERVICE_SPEC, f"{where}.spec")
    _check_serve_config(serve_config(obj), f"{where}.spec.serveConfigV2")
    cluster = spec.get("rayClusterConfig")
    assert cluster, f"{where}.spec.rayClusterConfig is required"
    _only(cluster, RAYCLUSTER_SPEC, f"{where}.spec.rayClusterConfig")
    assert re.fullmatch(r"\d+\.\d+\.\d+", str(cluster.get("rayVersion", ""))), f"{where}: rayVersion X.Y.Z"
    head = cluster.get("headGroupSpec")
    assert head and "template" in head, f"{where}: rayClusterConfig.headGroupSpec.template is required"
    _only(head, HEAD_GROUP, f"{where}.headGroupSpec")
    _check_start_params(head.get("rayStartParams", {}), f"{where}.headGroupSpec.rayStartParams")
    model_of(head["template"], "V1PodTemplateSpec", f"{where}.headGroupSpec.template")
    groups = cluster.get("workerGroupSpecs") or []
    assert len({g.get("groupName") for g in groups}) == len(groups), f"{where}: worker group names repeat"
    for i, group in enumerate(groups):
        w = f"{where}.workerGroupSpecs[{i}]"
        _only(group, WORKER_GROUP, w)
        assert group.get("groupName") and "template" in group, f"{w}: groupName and template are required"
        _check_start_params(group.get("rayStartParams", {}), f"{w}.rayStartParams")
        counts = [_int(group[k], f"{w}.{k}") for k in ("minReplicas", "replicas", "maxReplicas") if k in group]
        assert counts == sorted(counts), f"{w}: minReplicas <= replicas <= maxReplicas"
        model_of(group["template"], "V1PodTemplateSpec", f"{w}.template")


CHECKS = {
    ("serving.kserve.io/v1beta1", "InferenceService"): check_inference_service,
    ("ray.io/v1", "RayService"): check_ray_service,
}


def check_crd(obj: dict, where: str) -> None:
    assert set(obj) <= {"apiVersion", "kind", "metadata", "spec"}, f"{where}: unknown top-level fields"
    CHECKS[(obj["apiVersion"], obj["kind"])](obj, where)
