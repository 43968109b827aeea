"""Upstream behaviour of ``synapse_sdk.plugins.config`` and ``.enums``: config.yaml's rules."""

from __future__ import annotations

import warnings

import pytest

from synapse_sdk.plugins.config import PluginConfig
from synapse_sdk.plugins.enums import PackageManager, PluginCategory, RunMethod


def test_enum_values() -> None:
    assert [c.value for c in PluginCategory] == [
        "neural_net", "export", "upload", "smart_tool", "post_annotation", "pre_annotation", "data_validation",
        "custom"]
    assert [m.value for m in RunMethod] == ["job", "task", "serve", "restapi"]
    assert PackageManager.UV == "uv"


def test_minimal_config_and_defaults() -> None:
    cfg = PluginConfig.model_validate({"name": "P", "code": "p"})
    assert cfg.category == PluginCategory.CUSTOM and cfg.version == "0.1.0"
    assert cfg.package_manager == PackageManager.PIP and cfg.actions == {}


def test_name_and_code_are_required() -> None:
    with pytest.raises(Exception):
        PluginConfig.model_validate({"name": "P"})


def test_unknown_category_is_rejected() -> None:
    with pytest.raises(Exception, match="category"):
        PluginConfig.model_validate({"name": "P", "code": "p", "category": "robotics"})


def test_neural_net_needs_a_data_type() -> None:
    with pytest.raises(Exception, match="data_type"):
        PluginConfig.model_validate({"name": "P", "code": "p", "category": "neural_net"})
    ok = PluginConfig.model_validate({"name": "P", "code": "p", "category": "neural_net", "data_type": "image"})
    assert ok.data_type == "image"


def test_non_semver_version_only_warns() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cfg = PluginConfig.model_validate({"name": "P", "code": "p", "version": "1.0"})
    assert cfg.version == "1.0"
    assert any(issubclass(w.category, FutureWarning) for w in caught)


def test_actions_with_methods() -> None:
    cfg = PluginConfig.model_validate({"name": "P", "code": "p", "actions": {
        "train": {"name": "train", "entrypoint": "p.train.Train", "method": "job"}}})
    assert cfg.actions["train"].method == RunMethod.JOB
    with pytest.raises(Exception):
        PluginConfig.model_validate({"name": "P", "code": "p", "actions": {
            "train": {"name": "train", "entrypoint": "p.train.Train", "method": "cron"}}})
