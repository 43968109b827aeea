"""Upstream behaviour of ``synapse_sdk.plugins.context``: RuntimeContext and PluginEnvironment."""

from __future__ import annotations

import dataclasses

import pytest

from synapse_sdk.loggers import NoOpLogger
from synapse_sdk.plugins.context import PluginEnvironment, RuntimeContext
from synapse_sdk.plugins.context.env import PluginEnvironment as EnvFromEnvModule
from synapse_sdk.plugins.models.logger import LogLevel


def make(**kw) -> RuntimeContext:
    return RuntimeContext(logger=NoOpLogger(), env=PluginEnvironment({"SYNAPSE_LANGUAGE": "ko"}), **kw)


def test_fields_in_upstreams_order() -> None:
    names = [f.name for f in dataclasses.fields(RuntimeContext)]
    assert names[:8] == ["logger", "env", "job_id", "client", "v2_client", "agent_client", "checkpoint", "language"]


def test_v1_and_v2_client_accessors() -> None:
    v1, v2 = object(), object()
    ctx = make(client=v1, v2_client=v2)
    assert ctx.client_v1 is v1 and ctx.client_v2 is v2
    assert make().client_v2 is None


def test_logging_paths_reach_the_logger() -> None:
    ctx = make()
    ctx.log("checkpoint", {"epoch": 1})
    ctx.log("checkpoint", {"epoch": 2}, None, level=LogLevel.WARNING)
    ctx.set_progress(1, 2, "train")
    ctx.set_metrics({"loss": 0.5}, "train")
    ctx.log_message("hello {name}", LogLevel.INFO, name="x")
    ctx.log_message({"en": "english", "ko": "korean"})
    ctx.log_metric("train", "loss", 0.5, acc=0.9)
    ctx.log_visualization("val", "epoch_1", 0, "/tmp/x.png")
    ctx.log_trials(trials={"t1": {"loss": 0.1}}, metrics=["loss"], best_trial="t1")
    ctx.log_dev_event("dev", {"a": 1})
    assert ctx.logger.get_progress("train").percent == 50.0
    assert ctx.logger.get_metrics("train") == {"loss": 0.5}


def test_set_progress_validates_through_the_logger() -> None:
    with pytest.raises(ValueError):
        make().set_progress(3, 2, "train")


def test_plugin_environment_typed_getters() -> None:
    env = PluginEnvironment({"N": "3", "F": "0.5", "B": "true", "L": "a,b", "S": "x"})
    assert EnvFromEnvModule is PluginEnvironment
    assert (env.get_int("N"), env.get_float("F"), env.get_bool("B"), env.get_str("S")) == (3, 0.5, True, "x")
    assert env.get("missing", "d") == "d" and "N" in env and env["S"] == "x"
    merged = PluginEnvironment.merge(env, PluginEnvironment({"S": "y"}))
    assert merged.get_str("S") == "y" and merged.get_int("N") == 3


def test_plugin_environment_from_environ_with_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MYPLUG_DEPTH", "7")
    env = PluginEnvironment.from_environ("MYPLUG_")
    assert env.get_int("DEPTH") == 7
