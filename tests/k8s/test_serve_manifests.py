"""deploy/k8s/serve (issue 20, "Deploying it"): every build of the serving manifests (the Deployment set, each
component, KServe, the RayService) made offline with `kubectl kustomize`, parsed strictly (the client's
models; serve_crds.py for the custom resources), and checked for what serving depends on: the grace period
covers preStop + drain, the probes hit the server's port and health routes, the Service, HPA and PDB point
at the pods they mean, the KServe predictor runs the same pod as the Deployment, the RayService's Serve
config agrees with its pods and with upstream's route prefix.

Each check is a function that raises AssertionError; the `*_catches_*` tests feed it broken copies, so a
check that stopped checking fails here.
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from .manifests import SERVE, SERVE_COMPONENTS, build, kustomize, quantity, to_model
from .serve_crds import serve_config

COMPONENT = {c.name: c for c in SERVE_COMPONENTS}
#: Every way the serving manifests are meant to be built: (id, resources, components).
BUILDS = {
    "serve": ([SERVE], []),
    "serve+gpu": ([SERVE], ["gpu"]),
    "serve+kserve": ([SERVE], ["kserve"]),
    "serve+kserve+gpu": ([SERVE], ["kserve", "gpu"]),
}
DEFAULT_PORT, DEFAULT_DRAIN = 8100, 30  # the server's defaults: SYNAPSE_SERVE_PORT, SYNAPSE_SERVE_DRAIN
MARGIN_S = 5                            # exit, flushing the last events, the kubelet's own latency
HEALTH, ROUTES = "/-/healthz", "/-/routes"


def _build(name: str) -> list[dict]:
    resources, components = BUILDS[name]
    return build(resources, [COMPONENT[c] for c in components])


@pytest.fixture(scope="module", params=sorted(BUILDS))
def built(request: pytest.FixtureRequest) -> tuple[str, list[dict]]:
    return request.param, _build(request.param)


def _one(objs: list[dict], kind: str) -> dict:
    found = [o for o in objs if o["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind}s"
    return found[0]


def serving_pods(objs: list[dict]) -> list[tuple[str, dict, dict]]:
    """(where, pod labels, pod spec) of every serving pod a build defines: the Deployment's template and
    the InferenceService's predictor (whose inline PodSpec KServe copies into its own Deployment)."""
    pods = []
    for o in objs:
        if o["kind"] == "Deployment":
            t = o["spec"]["template"]
            pods.append((f"Deployment/{o['metadata']['name']}", t["metadata"]["labels"], t["spec"]))
        elif o["kind"] == "InferenceService":
            p = o["spec"]["predictor"]
            pods.append((f"InferenceService/{o['metadata']['name']}", p.get("labels", {}), p))
    return pods


def _main(pod: dict) -> dict:
    (c,) = [c for c in pod["containers"] if c["name"] in ("synapse", "kserve-container")]
    return c


def _env(c: dict) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in c.get("env", [])}


def _port_of(c: dict) -> int:
    return int(_env(c).get("SYNAPSE_SERVE_PORT") or DEFAULT_PORT)


def _resolve(c: dict, port: Any) -> int:
    """A probe's or a Service's port (a number or a port name) as the container port it reaches."""
    if isinstance(port, int):
        return port
    named = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    assert port in named, f"port name {port!r} is not a container port ({sorted(named)})"
    return named[port]


def _prestop_s(c: dict) -> int:
    hook = (c.get("lifecycle") or {}).get("preStop")
    assert hook, "no preStop: SIGTERM would arrive while the endpoint is still being removed everywhere"
    if "sleep" in hook:
        return int(hook["sleep"]["seconds"])
    command = hook["exec"]["command"]
    assert command[0].endswith("sleep"), f"preStop {command}: a sleep, so its length is known"
    return int(command[1])


# -- the checks ----------------------------------------------------------------------------------------


def check_drain_fits_grace(pod: dict) -> None:
    c = _main(pod)
    drain = int(_env(c).get("SYNAPSE_SERVE_DRAIN") or DEFAULT_DRAIN)
    grace = pod.get("terminationGracePeriodSeconds", 30)
    need = _prestop_s(c) + drain + MARGIN_S
    assert grace >= need, f"terminationGracePeriodSeconds {grace} < preStop + drain ({drain}) + {MARGIN_S} = {need}"


def check_probes(pod: dict) -> None:
    c = _main(pod)
    port = _port_of(c)
    assert port in [p["containerPort"] for p in c.get("ports", [])], f"SYNAPSE_SERVE_PORT {port} is not a containerPort"
    probes = {k: c.get(k) for k in ("startupProbe", "readinessProbe", "livenessProbe")}
    for kind, probe in probes.items():
        assert probe and "httpGet" in probe, f"{kind}: an httpGet probe on the server's health routes"
        assert _resolve(c, probe["httpGet"]["port"]) == port, f"{kind} probes port {probe['httpGet']['port']}, the server listens on {port}"
    assert probes["readinessProbe"]["httpGet"]["path"] == HEALTH, "readiness is /-/healthz (503 while loading and draining)"
    assert probes["startupProbe"]["httpGet"]["path"] == HEALTH
    live = probes["livenessProbe"]
    assert live["httpGet"]["path"] in (HEALTH, ROUTES), f"liveness on {live['httpGet']['path']}: not a route the server has"
    startup = probes["startupProbe"]
    assert startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3) >= 120, "startup: room to load a model"
    if live["httpGet"]["path"] == HEALTH:  # 503 while draining: it must not restart a draining pod
        drain = int(_env(c).get("SYNAPSE_SERVE_DRAIN") or DEFAULT_DRAIN)
        assert live.get("periodSeconds", 10) * live.get("failureThreshold", 3) > drain, "liveness on /-/healthz kills draining pods"


def check_pod_hardening(pod: dict) -> None:
    c = _main(pod)
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    assert pod.get("automountServiceAccountToken") is False
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True, "a writable root filesystem"
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add")
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    env = _env(c)
    for path in ("/tmp", env.get("SYNAPSE_CACHE_DIR", "/var/cache/synapse")):
        assert path in mounts, f"{path} is not mounted: the root filesystem is read-only"
        v = volumes[mounts[path]["name"]]
        assert not mounts[path].get("readOnly"), f"{path} must be writable"
        assert "emptyDir" in v or "persistentVolumeClaim" in v or "hostPath" in v, f"{path}: {v}"
    disk = sum(quantity(v["emptyDir"]["sizeLimit"]) for v in volumes.values()
               if "emptyDir" in v and v["emptyDir"].get("medium") != "Memory")
    assert all(v["emptyDir"].get("sizeLimit") for v in volumes.values() if "emptyDir" in v), "emptyDir without sizeLimit"
    assert quantity(c["resources"]["requests"]["ephemeral-storage"]) >= disk, "emptyDirs not covered by ephemeral-storage"
    cache = volumes[mounts[env.get("SYNAPSE_CACHE_DIR", "/var/cache/synapse")]["name"]]
    if "SYNAPSE_CACHE_MAX_BYTES" in env and "emptyDir" in cache:
        assert quantity(env["SYNAPSE_CACHE_MAX_BYTES"]) < quantity(cache["emptyDir"]["sizeLimit"]), \
            "the cache's bound is over its volume: the kubelet evicts the pod before the cache prunes"
    for e in c.get("env", []):
        assert "secretKeyRef" not in (e.get("valueFrom") or {}), f"{e['name']}: secrets are files, not env"
    assert c["resources"]["requests"].get("cpu"), "a CPU request: the HPA's utilization is a share of it"
    assert c["resources"]["limits"].get("memory"), "a memory limit"
    assert env.get("SYNAPSE_ACTION"), "SYNAPSE_ACTION names the serve action"


def check_gpu(pod: dict) -> None:
    c = _main(pod)
    gpus = int(c["resources"].get("limits", {}).get("nvidia.com/gpu", 0))
    tolerates = any(t.get("key") == "nvidia.com/gpu" for t in pod.get("tolerations") or [])
    if gpus:
        assert gpus == 1 and tolerates, "a GPU pod without the nvidia.com/gpu toleration never schedules on GPU nodes"
        assert "NVIDIA_VISIBLE_DEVICES" not in _env(c), "NVIDIA_VISIBLE_DEVICES=void hides the GPU it asked for"
        assert quantity(c["resources"]["requests"]["memory"]) == quantity(c["resources"]["limits"]["memory"])
    else:
        assert not tolerates and _env(c).get("NVIDIA_VISIBLE_DEVICES") == "void"


def _matches(selector: dict, labels: dict) -> bool:
    assert set(selector) <= {"matchLabels"}, f"only matchLabels is checked here: {selector}"
    return bool(selector["matchLabels"]) and selector["matchLabels"].items() <= labels.items()


def check_wiring(objs: list[dict]) -> None:
    """Service -> pods and port; HPA -> the Deployment; PDB -> the serving pods and room to evict."""
    pods = serving_pods(objs)
    assert len(pods) == 1, [w for w, _, _ in pods]
    where, labels, pod = pods[0]
    c = _main(pod)
    port = _port_of(c)
    assert labels.get("app.kubernetes.io/component") == "serve", f"{where}: pods labelled component=serve"
    for o in objs:
        if o["kind"] == "Deployment":
            assert _matches(o["spec"]["selector"], labels), "the Deployment's selector misses its own pods"
            for t in pod.get("topologySpreadConstraints") or []:
                assert _matches(t["labelSelector"], labels), "topology spread counts other pods"
            hpas = [h for h in objs if h["kind"] == "HorizontalPodAutoscaler"]
            assert "replicas" not in o["spec"] or not hpas, "spec.replicas beside an HPA: every apply resets the count"
            annotations = o["spec"]["template"]["metadata"].get("annotations", {})
            if "prometheus.io/port" in annotations:
                assert int(annotations["prometheus.io/port"]) == port, "Prometheus scrapes another port"
        elif o["kind"] == "Service":
            assert o["spec"]["selector"].items() <= labels.items(), "the Service selects no serving pod"
            (p,) = o["spec"]["ports"]
            assert _resolve(c, p.get("targetPort", p["port"])) == port, f"the Service sends to {p.get('targetPort')}, the server is on {port}"
        elif o["kind"] == "HorizontalPodAutoscaler":
            ref = o["spec"]["scaleTargetRef"]
            targets = [d for d in objs if d["kind"] == ref["kind"] and d["metadata"]["name"] == ref["name"]]
            assert ref["kind"] == "Deployment" and ref["apiVersion"] == "apps/v1" and targets, f"the HPA scales {ref}"
            assert 2 <= o["spec"]["minReplicas"] <= o["spec"]["maxReplicas"]
        elif o["kind"] == "PodDisruptionBudget":
            assert _matches(o["spec"]["selector"], labels), f"the PDB selects none of {where}'s pods"
            floor = next((x["spec"].get("minReplicas") or x["spec"]["predictor"].get("minReplicas") for x in objs
                          if x["kind"] in ("HorizontalPodAutoscaler", "InferenceService")), 1)
            if "maxUnavailable" in o["spec"]:
                assert 1 <= int(o["spec"]["maxUnavailable"]) < floor, "the PDB blocks every drain, or allows all replicas down"
            else:
                assert int(o["spec"]["minAvailable"]) < floor, "minAvailable >= replicas: no node can ever be drained"


ALL_POD_CHECKS = (check_drain_fits_grace, check_probes, check_pod_hardening, check_gpu)


# -- every build -------------------------------------------------------------------------------------------


def test_components_are_known() -> None:
    assert set(COMPONENT) == {"gpu", "kserve"}


def test_every_object_parses_strictly(built: tuple[str, list[dict]]) -> None:
    name, objs = built
    assert objs
    for o in objs:
        to_model(o, name)
    assert not [o for o in objs if o["kind"] == "Secret"], "credentials are created from files, never committed"


@pytest.mark.parametrize("check", ALL_POD_CHECKS, ids=lambda f: f.__name__)
def test_serving_pods(built: tuple[str, list[dict]], check: Any) -> None:
    name, objs = built
    pods = serving_pods(objs)
    assert pods, name
    for where, _, pod in pods:
        try:
            check(pod)
        except AssertionError as e:
            raise AssertionError(f"{name}: {where}: {e}") from None


def test_wiring(built: tuple[str, list[dict]]) -> None:
    check_wiring(built[1])


def test_what_each_build_holds() -> None:
    kinds = {name: sorted(o["kind"] for o in _build(name)) for name in BUILDS}
    assert kinds["serve"] == ["Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"]
    assert kinds["serve+kserve"] == ["InferenceService", "PodDisruptionBudget"], "KServe makes its own Deployment, Service, HPA"
    for name in ("serve+gpu", "serve+kserve+gpu"):
        (_, _, pod), = serving_pods(_build(name))
        assert int(_main(pod)["resources"]["limits"]["nvidia.com/gpu"]) == 1, name


def test_gpu_before_kserve_fails_the_build() -> None:
    """Listed the other way round, the GPU would patch the Deployment KServe replaces, and the predictor
    would run without one: the kserve component's guard makes that a build error, not a CPU deployment."""
    with pytest.raises(AssertionError, match="env/8/name"):
        build([SERVE], [COMPONENT["gpu"], COMPONENT["kserve"]])


def test_image_is_overridable_with_kustomize_images() -> None:
    digest = "sha256:" + "cd" * 32
    images = [{"name": "synapse-plugin", "newName": "registry.example.com/ml/my-plugin", "digest": digest}]
    for name in ("serve", "serve+kserve"):
        resources, components = BUILDS[name]
        (_, _, pod), = serving_pods(build(resources, [COMPONENT[c] for c in components], images=images))
        assert _main(pod)["image"] == f"registry.example.com/ml/my-plugin@{digest}", name


def test_kserve_predictor_runs_the_deployments_pod() -> None:
    """One pod to maintain: the predictor is the Deployment's pod but for what KServe names or owns, and
    scales and rolls out as the Deployment and its HPA do."""
    objs = _build("serve")
    (_, d_labels, deployment), = serving_pods(objs)
    d, hpa = _one(objs, "Deployment"), _one(objs, "HorizontalPodAutoscaler")["spec"]
    isvc = _one(_build("serve+kserve"), "InferenceService")
    predictor = copy.deepcopy(isvc["spec"]["predictor"])
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment"
    assert predictor.pop("labels") == d_labels
    assert predictor.pop("annotations") == d["spec"]["template"]["metadata"]["annotations"]
    assert predictor.pop("deploymentStrategy") == d["spec"]["strategy"]
    assert (predictor.pop("minReplicas"), predictor.pop("maxReplicas")) == (hpa["minReplicas"], hpa["maxReplicas"])
    (metric,) = hpa["metrics"]
    assert (predictor.pop("scaleMetric"), predictor.pop("scaleTarget")) == (
        metric["resource"]["name"], metric["resource"]["target"]["averageUtilization"])
    pod = copy.deepcopy(deployment)
    pod.pop("topologySpreadConstraints")  # KServe's Deployment: spread by the scheduler's defaults
    for c in pod["containers"] + predictor["containers"]:
        c.pop("name")
        for p in c["ports"]:
            p.pop("name")
    assert predictor == pod


# -- the checks catch real mistakes -----------------------------------------------------------------------


def _serve_pod() -> dict:
    return copy.deepcopy(serving_pods(_build("serve"))[0][2])


@pytest.mark.parametrize("break_it,check,message", [
    (lambda p: p.update(terminationGracePeriodSeconds=30), check_drain_fits_grace, "terminationGracePeriodSeconds 30"),
    (lambda p: _env_set(p, "SYNAPSE_SERVE_DRAIN", "60"), check_drain_fits_grace, "drain \\(60\\)"),
    (lambda p: _main(p).pop("lifecycle"), check_drain_fits_grace, "no preStop"),
    (lambda p: _main(p)["readinessProbe"]["httpGet"].update(port=8000), check_probes, "readinessProbe probes port 8000"),
    (lambda p: _main(p)["livenessProbe"]["httpGet"].update(path="/healthz"), check_probes, "not a route"),
    (lambda p: _main(p)["readinessProbe"]["httpGet"].update(path=ROUTES), check_probes, "readiness is /-/healthz"),
    (lambda p: _env_set(p, "SYNAPSE_SERVE_PORT", "9000"), check_probes, "9000 is not a containerPort"),
    (lambda p: _main(p)["livenessProbe"].update(httpGet={"path": HEALTH, "port": 8100}, failureThreshold=2),
     check_probes, "kills draining pods"),
    (lambda p: _main(p)["securityContext"].update(readOnlyRootFilesystem=False), check_pod_hardening, "writable root"),
    (lambda p: _main(p)["volumeMounts"].pop(), check_pod_hardening, "/tmp is not mounted"),
    (lambda p: _env_set(p, "SYNAPSE_CACHE_MAX_BYTES", "40G"), check_pod_hardening, "over its volume"),
    (lambda p: _main(p)["resources"]["limits"].update({"nvidia.com/gpu": 1}), check_gpu, "toleration"),
])
def test_pod_checks_catch(break_it: Any, check: Any, message: str) -> None:
    pod = _serve_pod()
    check(pod)
    break_it(pod)
    with pytest.raises(AssertionError, match=message):
        check(pod)


def _env_set(pod: dict, name: str, value: str) -> None:
    for e in _main(pod)["env"]:
        if e["name"] == name:
            e["value"] = value


def _kind(objs: list[dict], kind: str) -> dict:
    return next(o for o in objs if o["kind"] == kind)


@pytest.mark.parametrize("break_it,message", [
    (lambda o: _kind(o, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"].update({"app.kubernetes.io/instance": "other"}),
     "PDB selects none"),
    (lambda o: _kind(o, "PodDisruptionBudget")["spec"].update(maxUnavailable=2), "PDB blocks every drain, or allows all"),
    (lambda o: _kind(o, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"].update(name="synapse-serv"), "HPA scales"),
    (lambda o: _kind(o, "Service")["spec"]["ports"][0].update(targetPort=8000), "the Service sends to 8000"),
    (lambda o: _kind(o, "Service")["spec"]["selector"].update({"app.kubernetes.io/component": "action"}), "selects no serving pod"),
    (lambda o: _kind(o, "Deployment")["spec"].update(replicas=3), "beside an HPA"),
    (lambda o: _kind(o, "Deployment")["spec"]["template"]["metadata"]["annotations"].update({"prometheus.io/port": "9090"}),
     "Prometheus scrapes another port"),
])
def test_wiring_check_catches(break_it: Any, message: str) -> None:
    objs = _build("serve")
    check_wiring(objs)
    break_it(objs)
    with pytest.raises(AssertionError, match=message):
        check_wiring(objs)


def test_serve_dir_holds_only_what_the_builds_use() -> None:
    """Every file under deploy/k8s/serve is named by a kustomization (a stray manifest is never applied)."""
    used: set[Path] = set()
    for k in SERVE.rglob("kustomization.yaml"):
        doc = yaml.safe_load(k.read_text())
        names = [*doc.get("resources", []), *doc.get("configurations", []),
                 *(p["path"] for p in doc.get("patches", []) if "path" in p),
                 *(f.split("=")[-1] for g in doc.get("configMapGenerator", []) for f in g.get("files", []))]
        used |= {k.resolve(), *((k.parent / n).resolve() for n in names)}
    stray = sorted(str(p.relative_to(SERVE)) for p in SERVE.rglob("*") if p.is_file() and p.resolve() not in used)
    assert stray == [], f"files no kustomization names: {stray}"


def test_rayservice_builds_with_its_configmap() -> None:
    objs = kustomize(SERVE / "rayservice")
    cm, rs = _one(objs, "ConfigMap"), _one(objs, "RayService")
    config = serve_config(rs)
    head = rs["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]
    assert config["http_options"]["port"] == next(
        p["containerPort"] for p in head["containers"][0]["ports"] if p["name"] == "serve") == DEFAULT_PORT
    (app,) = config["applications"]
    # upstream's route prefix without a release checksum: /<md5 of the application's name, "code@version">
    assert app["route_prefix"] == "/" + hashlib.md5(app["name"].encode()).hexdigest()
    module, _, function = app["import_path"].partition(":")
    assert f"{module}.py" in cm["data"] and f"def {function}(args" in cm["data"][f"{module}.py"]
    groups = [rs["spec"]["rayClusterConfig"]["headGroupSpec"], *rs["spec"]["rayClusterConfig"]["workerGroupSpecs"]]
    for g in groups:
        pod = g["template"]["spec"]
        (c,) = pod["containers"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        app_mount = next(m for m in c["volumeMounts"] if volumes[m["name"]].get("configMap") and "subPath" not in m)
        assert volumes[app_mount["name"]]["configMap"]["name"] == cm["metadata"]["name"], "the hashed name reaches the pods"
        path = _env(c)["PYTHONPATH"].split(":")
        assert app_mount["mountPath"] in path and app["args"]["plugin_dir"] in path, "replicas import the builder and the plugin"
        assert mounts["/etc/profile.d/synapse-venv.sh"]["subPath"] in cm["data"], "KubeRay's `bash -l` finds ray"
        assert c["securityContext"]["readOnlyRootFilesystem"] is True and "/tmp" in mounts
        assert 8100 in [p["containerPort"] for p in c["ports"]]
