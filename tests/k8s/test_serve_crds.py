"""The structural checks of serving's custom resources (serve_crds.py) refuse the mistakes a CRD would, and the
RayService's application builder (deploy/k8s/serve/rayservice/synapse_ray_app.py) finds a plugin's serve
class from config.yaml the way upstream's loader does, or says what is wrong.

No CRD schema is available offline: the checks are ours, written from the CRDs' types. Each mutation below
is one a person could make and the API server (or the operator) would refuse or silently drop.
"""

from __future__ import annotations

import copy
import importlib.util
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from .manifests import SERVE, SERVE_COMPONENTS, build, kustomize, to_model

KSERVE = next(c for c in SERVE_COMPONENTS if c.name == "kserve")


def _isvc() -> dict:
    return next(o for o in build([SERVE], [KSERVE]) if o["kind"] == "InferenceService")


def _rayservice() -> dict:
    return next(o for o in kustomize(SERVE / "rayservice") if o["kind"] == "RayService")


def _predictor(o: dict) -> dict:
    return o["spec"]["predictor"]


def _cluster(o: dict) -> dict:
    return o["spec"]["rayClusterConfig"]


def _set_serve_config(o: dict, edit: Any) -> None:
    import yaml

    config = yaml.safe_load(o["spec"]["serveConfigV2"])
    edit(config)
    o["spec"]["serveConfigV2"] = yaml.safe_dump(config)


ISVC_MISTAKES = [
    ("no predictor", lambda o: o["spec"].pop("predictor"), "predictor is required"),
    ("misspelled extension field", lambda o: _predictor(o).update(minReplica=_predictor(o).pop("minReplicas")), "minReplica"),
    ("misspelled pod field", lambda o: _predictor(o).update(terminationGracePeriod=50), "terminationGracePeriod"),
    ("misspelled container field", lambda o: _predictor(o)["containers"][0].update(readinesProbe={}), "readinesProbe"),
    ("replicas as a string", lambda o: _predictor(o).update(minReplicas="2"), "not an integer"),
    ("min over max", lambda o: _predictor(o).update(minReplicas=20), "minReplicas > maxReplicas"),
    ("unknown scale metric", lambda o: _predictor(o).update(scaleMetric="gpu"), "scaleMetric"),
    ("container renamed", lambda o: _predictor(o)["containers"][0].update(name="synapse"), "kserve-container"),
    ("two ports", lambda o: _predictor(o)["containers"][0]["ports"].append({"containerPort": 9000}), "one container port"),
    ("name with a dot", lambda o: o["metadata"].update(name="synapse.serve"), "DNS-1035"),
    ("spec field misspelled", lambda o: o["spec"].update(transformers={}), "transformers"),
]

RAYSERVICE_MISTAKES = [
    ("serveConfigV2 as an object", lambda o: o["spec"].update(serveConfigV2={"applications": []}), "a string holding YAML"),
    ("no import_path", lambda o: _set_serve_config(o, lambda c: c["applications"][0].pop("import_path")), "import_path"),
    ("route prefix without /", lambda o: _set_serve_config(o, lambda c: c["applications"][0].update(route_prefix="x")),
     "must start with /"),
    ("misspelled deployment option", lambda o: _set_serve_config(
        o, lambda c: c["applications"][0]["deployments"][0].update(num_replica=2)), "num_replica"),
    ("misspelled http option", lambda o: _set_serve_config(o, lambda c: c["http_options"].update(http_port=8100)),
     "http_port"),
    ("rayStartParams number", lambda o: _cluster(o)["headGroupSpec"]["rayStartParams"].update({"num-cpus": 0}),
     "must be a string"),
    ("no head template", lambda o: _cluster(o)["headGroupSpec"].pop("template"), "headGroupSpec.template is required"),
    ("worker without groupName", lambda o: _cluster(o)["workerGroupSpecs"][0].pop("groupName"), "groupName and template"),
    ("replicas over max", lambda o: _cluster(o)["workerGroupSpecs"][0].update(replicas=9), "minReplicas <= replicas"),
    ("rayVersion missing", lambda o: _cluster(o).pop("rayVersion"), "rayVersion"),
    ("misspelled pod field", lambda o: _cluster(o)["headGroupSpec"]["template"]["spec"].update(volume=[]), "volume"),
    ("misspelled spec field", lambda o: o["spec"].update(rayClusterSpec={}), "rayClusterSpec"),
]


CRD_MISTAKES = [("InferenceService", _isvc, *m) for m in ISVC_MISTAKES] + \
               [("RayService", _rayservice, *m) for m in RAYSERVICE_MISTAKES]


@pytest.mark.parametrize("build,mutate,message", [m[1:2] + m[3:] for m in CRD_MISTAKES],
                         ids=[f"{m[0]}: {m[2]}" for m in CRD_MISTAKES])
def test_crd_check_refuses(build: Any, mutate: Any, message: str) -> None:
    """The structural check passes each resource as built and refuses each broken copy, naming the mistake."""
    built = build()
    to_model(built, "as built")
    broken = copy.deepcopy(built)
    mutate(broken)
    with pytest.raises(AssertionError, match=message):
        to_model(broken, "mutated")


# -- the application builder, without Ray: finding the class ------------------------------------------------

BUILDER = SERVE / "rayservice" / "synapse_ray_app.py"


@pytest.fixture(scope="module")
def builder() -> Any:
    spec = importlib.util.spec_from_file_location("synapse_ray_app_under_test", BUILDER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _plugin(tmp_path: Path, method: str = "serve", entrypoint: str = "plugin.inference.InferenceDeployment") -> Path:
    package = f"plugin_{abs(hash(tmp_path)) % 10**8}"  # a fresh module name per test: sys.modules caches
    root = tmp_path / "my_plugin"
    (root / package).mkdir(parents=True)
    (root / package / "__init__.py").write_text("")
    (root / package / "inference.py").write_text("class InferenceDeployment:\n    app = None\n")
    (root / "config.yaml").write_text(textwrap.dedent(f"""\
        code: my_plugin
        version: 1.0.0
        actions:
          inference:
            entrypoint: {entrypoint.replace("plugin.", package + ".", 1)}
            method: {method}
          deployment:
            entrypoint: {package}.deployment.Deploy
            method: job
            serve_options:
              max_ongoing_requests: 7
        """))
    return root


def test_builder_finds_the_serve_class_as_configured(builder: Any, tmp_path: Path) -> None:
    root = _plugin(tmp_path)
    cls, config = builder._entrypoint(root, "inference")
    assert cls.__name__ == "InferenceDeployment" and cls.__module__.endswith(".inference")
    assert config["actions"]["deployment"]["serve_options"] == {"max_ongoing_requests": 7}
    # upstream also writes module:Class
    root2 = _plugin(tmp_path / "colon", entrypoint="plugin.inference:InferenceDeployment")
    assert builder._entrypoint(root2, "inference")[0].__name__ == "InferenceDeployment"
    sys.path.remove(str(root))
    sys.path.remove(str(root2))


@pytest.mark.parametrize("action,method,message", [
    ("predict", "serve", "no action 'predict'"),
    ("inference", "job", "method 'job', not serve or restapi"),
])
def test_builder_says_what_is_wrong(builder: Any, tmp_path: Path, action: str, method: str, message: str) -> None:
    root = _plugin(tmp_path, method=method)
    with pytest.raises(ValueError, match=message) as info:
        builder._entrypoint(root, action)
    assert str(root / "config.yaml") in str(info.value)


@pytest.mark.ray
def test_builder_binds_with_ray_serve_when_installed(builder: Any, tmp_path: Path) -> None:
    """With ray[serve] importable, build() returns a bound application named after the class (what
    serveConfigV2's deployments[].name refers to), serve_options from the deployment action applied.
    Deselected where ray[serve] is not installed (tests/k8s/conftest.py); the RayService's image has it."""
    root = _plugin(tmp_path)
    app = builder.build({"plugin_dir": str(root), "action": "inference", "backend_url": "http://backend"})
    deployment = app._bound_deployment
    assert deployment.name == "InferenceDeployment"
    assert deployment.max_ongoing_requests == 7
    assert app._bound_deployment.init_args == ("http://backend",)
