"""config.yaml parsing and action resolution."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from synapse_runtime.errors import ActionNotFoundError, ExitCode, PluginLoadError
from synapse_runtime.contract.plugin import PluginConfig, load_plugin, resolve_action

CODE = '''
from synapse_runtime import BaseAction, action
from pydantic import BaseModel

class P(BaseModel):
    n: int = 1

class Train(BaseAction[P]):
    def execute(self):
        return {"n": self.params.n}

@action(name="fn")
def fn(params, ctx):
    return params
'''


def make_plugin(tmp_path: Path, config: str, code: str = CODE, module: str = "mod") -> Path:
    root = tmp_path / "plugin"
    root.mkdir(exist_ok=True)
    (root / "config.yaml").write_text(textwrap.dedent(config))
    (root / f"{module}.py").write_text(code)
    return root


def test_upstream_config_with_unknown_keys_loads(tmp_path: Path) -> None:
    root = make_plugin(tmp_path, """
        name: My Plugin
        code: my-plugin
        version: 1.2.3
        category: neural_net
        package_manager: uv
        env: {A: 1}
        requires: {sdk: ">=2026", python: ">=3.11", cuda: "12"}
        future_key: {anything: [1, 2]}
        actions:
          train:
            entrypoint: mod:Train
            method: job
            brand_new_option: true
          fn: mod.fn
    """)
    plugin = load_plugin(root)
    c = plugin.config
    assert (c.identifier, c.version, c.category, c.package_manager) == ("my-plugin", "1.2.3", "neural_net", "uv")
    assert c.extra == {"future_key": {"anything": [1, 2]}}
    assert c.actions["train"].extra == {"brand_new_option": True}
    assert c.actions["fn"].entrypoint == "mod.fn"


@pytest.mark.parametrize(
    "config,match",
    [
        ("name: x\ncategory: nonsense\n", r"config.yaml: category: 'nonsense' is not one of"),
        ("name: x\nactions:\n  a:\n    method: sometimes\n    entrypoint: m:A\n", r"actions.a.method"),
        ("name: x\nactions:\n  a:\n    description: no entrypoint\n", r"actions.a.entrypoint is missing"),
        ("name: x\nactions: [1, 2]\n", r"actions: expected dict"),
        ("version: 1\n", r"name is missing"),
        ("name: x\n  bad: indentation\n: :\n", r"config.yaml:\d+:\d+: config.yaml is not valid YAML"),
        ("- a list\n", r"\(top level\): expected dict"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path: Path, config: str, match: str) -> None:
    root = make_plugin(tmp_path, config)
    with pytest.raises(PluginLoadError, match=match) as err:
        load_plugin(root)
    assert err.value.exit_code == ExitCode.NOT_FOUND


def test_missing_directory_and_missing_config(tmp_path: Path) -> None:
    with pytest.raises(PluginLoadError, match="does not exist"):
        load_plugin(tmp_path / "nope")
    with pytest.raises(PluginLoadError, match="has no config.yaml"):
        load_plugin(tmp_path)
    assert load_plugin(tmp_path, require_config=False).config.name == tmp_path.name


CONFIG = """
    name: p
    category: custom
    actions:
      train: {entrypoint: "mod:Train"}
      fn: {entrypoint: mod.fn}
"""


@pytest.mark.parametrize("name,entrypoint,expected", [
    ("train", None, "train"), ("fn", None, "fn"), (None, "mod:Train", "train"), (None, "mod.Train", "train"),
    (None, "mod:fn", "fn"),
])
def test_resolution_by_name_and_entrypoint(tmp_path: Path, name, entrypoint, expected) -> None:
    plugin = load_plugin(make_plugin(tmp_path, CONFIG, module="mod"))
    resolved = resolve_action(plugin, name, entrypoint)
    assert resolved.name == expected


def test_config_fills_action_name_and_category(tmp_path: Path) -> None:
    plugin = load_plugin(make_plugin(tmp_path, CONFIG, module="mod"))
    resolved = resolve_action(plugin, "train")
    assert resolved.target.action_name == "train" and resolved.target.category == "custom"


def test_only_action_is_the_default_and_ambiguity_is_an_error(tmp_path: Path) -> None:
    plugin = load_plugin(make_plugin(tmp_path, "name: p\nactions:\n  only: mod:Train\n", module="mod"))
    assert resolve_action(plugin).name == "only"
    plugin2 = load_plugin(make_plugin(tmp_path, CONFIG, module="mod"))
    with pytest.raises(ActionNotFoundError, match="has 2 actions; say which one") as err:
        resolve_action(plugin2)
    assert err.value.details["available"] == ["fn", "train"]


@pytest.mark.parametrize("name,entrypoint,match", [
    ("nope", None, "has no action 'nope'"),
    (None, "missing_module:X", "module 'missing_module' of entrypoint"),
    (None, "mod:Nope", "has no attribute 'Nope'"),
    (None, "justaname", "is not `module:Class`"),
    (None, "mod:P", "not an action"),
])
def test_resolution_errors_are_exit_3(tmp_path: Path, name, entrypoint, match) -> None:
    plugin = load_plugin(make_plugin(tmp_path, CONFIG, module="mod"))
    with pytest.raises(ActionNotFoundError, match=match) as err:
        resolve_action(plugin, name, entrypoint)
    assert err.value.exit_code == 3


@pytest.mark.parametrize("code,match", [
    ("def broken(:\n", "SyntaxError"),
    ("import not_installed_pkg_xyz\n", "No module named 'not_installed_pkg_xyz'"),
    ("raise RuntimeError('at import')\n", "RuntimeError: at import"),
])
def test_import_failures_are_plugin_load_errors_with_location(tmp_path: Path, code: str, match: str) -> None:
    module = f"broken_{abs(hash(code)) % 10**6}"
    plugin = load_plugin(make_plugin(tmp_path, f"name: p\nactions:\n  a: {module}:A\n", code=code, module=module))
    with pytest.raises(PluginLoadError, match=match) as err:
        resolve_action(plugin, "a")
    assert err.value.details["where"] and module in err.value.details["where"]


def test_plugin_config_from_dict_defaults() -> None:
    c = PluginConfig.from_dict({"name": "n"})
    assert c.version == "0.1.0" and c.actions == {} and c.package_manager == "pip" and c.identifier == "n"


def test_upstream_methods_and_default_methods(tmp_path: Path) -> None:
    """Upstream's `restapi` is valid; an action without `method` gets upstream's default for its name."""
    root = make_plugin(tmp_path, """
        name: x
        actions:
          inference: {entrypoint: mod:Train}
          train: {entrypoint: mod:Train}
          custom_thing: {entrypoint: mod:Train}
          api: {entrypoint: mod:Train, method: restapi}
    """)
    actions = load_plugin(root).config.actions
    assert {n: a.method for n, a in actions.items()} == {
        "inference": "serve", "train": "job", "custom_thing": "task", "api": "restapi"}
    assert actions["inference"].serves and actions["api"].serves and not actions["train"].serves


def test_one_model_lenient_for_runner_strict_for_upstream_api(tmp_path: Path) -> None:
    """The runner and upstream's pydantic PluginConfig share the one model: same values, same defaults."""
    from synapse_runtime.compat.sdk_api.config import PluginConfig as Upstream

    data = {"name": "P", "code": "p", "actions": {"inference": {"entrypoint": "m:A"}, "api": "m:B"}}
    up = Upstream.model_validate(data)
    ours = PluginConfig.from_dict(data)
    assert {n: str(a.method) for n, a in up.actions.items()} == {n: a.method for n, a in ours.actions.items()}
    PluginConfig.from_dict({"name": "P", "category": "neural_net"})  # lenient: missing code/data_type pass
    with pytest.raises(PluginLoadError, match="data_type"):
        PluginConfig.from_dict({"name": "P", "code": "p", "category": "neural_net"}, strict=True)
    with pytest.raises(Exception, match="data_type"):
        Upstream.model_validate({"name": "P", "code": "p", "category": "neural_net", "data_type": "smell"})


def test_upstreams_pydantic_config_types_exactly_the_one_models_keys() -> None:
    """config.yaml has one model (contract/plugin_config.py); upstream's pydantic ``PluginConfig``
    (compat/sdk_api/config.py) is its face for upstream's API and checks through it.  A key typed in
    one and not the other would be read two ways, so the two field lists must be the same."""
    from synapse_runtime.compat.sdk_api import config as face
    from synapse_runtime.contract import plugin_config as one

    for ours, theirs in ((one.PluginConfig, face.PluginConfig), (one.ActionConfig, face.ActionConfig)):
        assert set(ours.__dataclass_fields__) - {"extra"} == set(theirs.model_fields), ours.__name__
