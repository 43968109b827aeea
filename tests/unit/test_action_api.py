"""The action API of the spec: BaseAction, @action, RuntimeContext, loggers."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from synapse_runtime import (
    BaseAction,
    ExecutionError,
    LogLevel,
    MemoryLogger,
    NoResult,
    PluginEnvironment,
    RuntimeContext,
    ValidationError,
    action,
)


class TrainParams(BaseModel):
    epochs: int = 10
    learning_rate: float = 0.001


class Result(BaseModel):
    status: str


def ctx() -> RuntimeContext:
    return RuntimeContext(logger=MemoryLogger(), env=PluginEnvironment({"A": "1"}), job_id="j")


def test_params_model_from_generic_argument_and_config_defaults() -> None:
    class Train(BaseAction[TrainParams]):
        def execute(self) -> dict:
            return {"epochs": self.params.epochs}

    assert Train.params_model is TrainParams
    assert Train.action_name is None and Train.category is None
    assert Train.result_model is NoResult
    assert Train.input_type is None and Train.output_type is None


def test_explicit_class_attributes_win() -> None:
    class Other(BaseModel):
        x: int = 1

    class Train(BaseAction[TrainParams]):
        action_name = "train"
        category = "neural_net"
        params_model = Other

        def execute(self) -> dict:
            return {}

    assert Train.params_model is Other and Train.action_name == "train"


def test_dispatch_validates_instantiates_and_runs() -> None:
    class Train(BaseAction[TrainParams]):
        def execute(self) -> dict:
            assert isinstance(self.params, TrainParams)
            return {"epochs": self.params.epochs, "job": self.ctx.job_id}

    assert Train.dispatch({"epochs": 3}, ctx()) == {"epochs": 3, "job": "j"}


def test_dispatch_rejects_bad_params_with_field_details() -> None:
    class Train(BaseAction[TrainParams]):
        def execute(self) -> dict:
            return {}

    with pytest.raises(ValidationError) as err:
        Train.dispatch({"epochs": "many", "learning_rate": "x"}, ctx())
    locs = [e["loc"] for e in err.value.details["errors"]]
    assert locs == ["epochs", "learning_rate"]
    assert err.value.exit_code == 2
    assert "many" not in str(err.value.details)  # input values are never echoed


def test_result_model_validates() -> None:
    class Good(BaseAction[TrainParams]):
        result_model = Result

        def execute(self) -> dict:
            return {"status": "ok"}

    class Bad(Good):
        def execute(self) -> dict:
            return {"nope": 1}

    assert Good.dispatch({}, ctx()) == Result(status="ok")
    with pytest.raises(ExecutionError, match="result does not match Result"):
        Bad.dispatch({}, ctx())


def test_run_calls_execute_and_abstract_execute_is_required() -> None:
    class A(BaseAction[TrainParams]):
        def execute(self) -> str:
            return "x"

    assert A(TrainParams(), ctx()).run() == "x"

    class Missing(BaseAction[TrainParams]):
        pass

    with pytest.raises(TypeError):
        Missing(TrainParams(), ctx())


def test_action_helpers_delegate_to_the_context_logger() -> None:
    class A(BaseAction[TrainParams]):
        def execute(self) -> None:
            self.log("evt", {"k": 1}, file="/f")
            self.set_progress(1, 4)
            self.set_progress(2, 4, "phase")
            self.set_progress(3, 4, category="kw")
            self.set_progress(4, 4, step="newer")
            self.set_metrics({"loss": 1.0}, "train")
            self.log_message("hello")
            self.logger.info("via logger")

    c = ctx()
    A(TrainParams(), c).run()
    ev = c.logger.events
    assert ev[0] == {"type": "event", "event": "evt", "data": {"k": 1}, "file": "/f"}
    assert [(e["current"], e["category"]) for e in ev if e["type"] == "progress"] == [
        (1, None), (2, "phase"), (3, "kw"), (4, "newer")]
    assert ev[5] == {"type": "metrics", "category": "train", "values": {"loss": 1.0}}
    assert ev[6] == {"type": "message", "message": "hello", "context": "info"}
    assert ev[7] == {"type": "message", "message": "via logger", "context": "info"}


@pytest.mark.parametrize("current,total", [(1, 0), (1, -1), (-1, 10), (11, 10), ("1", 10), (1, None), (True, 2)])
def test_set_progress_validation(current, total) -> None:
    with pytest.raises(ValueError):
        ctx().set_progress(current, total)


def test_set_metrics_merges_and_validates() -> None:
    c = ctx()
    c.set_metrics({"loss": 1.0, "acc": 0.5}, "train")
    c.set_metrics({"loss": 0.5}, "train")
    assert c.logger.events[-1]["values"] == {"loss": 0.5, "acc": 0.5}
    assert c.logger.metrics == {"train": {"loss": 0.5, "acc": 0.5}}
    with pytest.raises(ValueError):
        c.set_metrics({"x": 1}, "")
    with pytest.raises(ValueError):
        c.set_metrics({"x": 1}, None)
    with pytest.raises(ValueError):
        c.set_metrics([("x", 1)], "train")  # not a mapping


@pytest.mark.parametrize(
    "call,expected",
    [
        (lambda c: c.log_message("m", "success"), ("success", None)),
        (lambda c: c.log_message("m", "danger"), ("danger", None)),
        (lambda c: c.log_message("m", LogLevel.SUCCESS), ("success", None)),
        (lambda c: c.log_message("m", level=LogLevel.ERROR), ("danger", "error")),
        (lambda c: c.log_message("m", level="critical"), ("danger", "critical")),
        (lambda c: c.log_message("m"), ("info", None)),
        (lambda c: c.logger.warning("m"), ("warning", None)),
        (lambda c: c.logger.error("m"), ("danger", "error")),
        (lambda c: c.logger.critical("m"), ("danger", "critical")),
    ],
)
def test_log_message_accepts_seed_strings_and_upstream_levels(call, expected) -> None:
    c = ctx()
    call(c)
    e = c.logger.events[-1]
    assert (e["context"], e.get("level")) == expected


def test_context_is_deprecated_and_level_wins() -> None:
    """Upstream's rule: ``context=`` warns (DeprecationWarning); with both, ``level`` is used."""
    c = ctx()
    with pytest.warns(DeprecationWarning, match="'context' parameter is deprecated"):
        c.log_message("m", context="warning")
    assert (c.logger.events[-1]["context"], c.logger.events[-1].get("level")) == ("warning", None)
    with pytest.warns(DeprecationWarning):
        c.log_message("m", level=LogLevel.ERROR, context="info")
    assert (c.logger.events[-1]["context"], c.logger.events[-1].get("level")) == ("danger", "error")
    with pytest.warns(DeprecationWarning):
        c.logger.log_message("m", context=LogLevel.SUCCESS)
    assert c.logger.events[-1]["context"] == "success"


def test_unknown_message_level_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown message level"):
        ctx().log_message("m", "loud")


def test_dev_event_debug_and_end_log() -> None:
    c = ctx()
    c.log_dev_event("dbg", {"a": 1})
    c.log_dev_event("plain")
    c.logger.debug("d")
    c.end_log()
    c.end_log()  # once only
    types = [(e["type"], e.get("message")) for e in c.logger.events]
    assert types == [("dev_event", "dbg"), ("dev_event", "plain"), ("dev_event", "d"),
                     ("message", "Plugin run is complete.")]
    assert c.logger.events[0]["data"] == {"a": 1} and c.logger.events[1]["data"] is None


def test_runtime_context_fields_and_env_dict_coercion() -> None:
    c = RuntimeContext(logger=MemoryLogger(), env={"X": "1"}, checkpoint={"category": "base", "path": "/m"})
    assert isinstance(c.env, PluginEnvironment) and c.env.get_int("X") == 1
    assert c.job_id is None and c.client is None and c.agent_client is None and c.language is None
    assert c.checkpoint == {"category": "base", "path": "/m"}


def test_function_action_decorator() -> None:
    @action(name="greet", description="says hi", params=TrainParams, category="custom")
    def greet(params: TrainParams, context: RuntimeContext) -> dict:
        context.log("hi", {"epochs": params.epochs})
        return {"epochs": params.epochs}

    assert greet.action_name == "greet" and greet.description == "says hi"
    assert greet.params_model is TrainParams and greet.category == "custom"
    c = ctx()
    assert greet.dispatch({"epochs": 7}, c) == {"epochs": 7}
    assert greet(TrainParams(epochs=2), c) == {"epochs": 2}  # still a plain function
    with pytest.raises(ValidationError):
        greet.dispatch({"epochs": "x"}, c)


def test_bare_action_decorator_and_docstring_description() -> None:
    @action
    def plain(params, context):
        """First line.

        More."""
        return params

    assert plain.action_name == "plain" and plain.description == "First line."
    assert plain.dispatch({"a": 1}, ctx()) == {"a": 1}


def test_import_paths_of_the_public_api() -> None:
    import synapse_runtime

    for name in synapse_runtime.__all__:
        assert getattr(synapse_runtime, name) is not None
    with pytest.raises(AttributeError):
        synapse_runtime.nope  # noqa: B018


def test_plugin_environment_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_PORT", "8080")
    monkeypatch.setenv("APP_DEBUG", "yes")
    env = PluginEnvironment.from_environ("APP_")
    assert env.get_int("PORT") == 8080 and env.get_bool("DEBUG") is True
    assert "PORT" in env and env["PORT"] == "8080"
    f = tmp_path / "x.env"
    f.write_text('# c\nexport A=1\nB="two words"\nC=\'x\'\nD=3.5 # note\nL=a, b ,c\n')
    fenv = PluginEnvironment.from_file(f)
    assert fenv.to_dict() == {"A": "1", "B": "two words", "C": "x", "D": "3.5", "L": "a, b ,c"}
    assert fenv.get_float("D") == 3.5 and fenv.get_list("L") == ["a", "b", "c"]
    assert fenv.get_str("missing", "dflt") == "dflt" and fenv.get_int("missing", 4) == 4
    merged = PluginEnvironment.merge(env, fenv, {"A": "9"})
    assert merged["A"] == "9" and merged["PORT"] == "8080"
    with pytest.raises(ValueError):
        fenv.get_int("B")
    with pytest.raises(ValueError):
        fenv.get_bool("B")
    assert "8080" not in repr(env)


def test_dotenv_errors_name_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.env"
    f.write_text("A=1\nthis is not a pair\n")
    with pytest.raises(ValidationError, match=r"bad.env, line 2"):
        PluginEnvironment.from_file(f)
