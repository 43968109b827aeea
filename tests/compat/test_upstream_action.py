"""Upstream behaviour of ``synapse_sdk.plugins.action``/``decorators``/``errors``/``types``."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from synapse_sdk.loggers import NoOpLogger
from synapse_sdk.plugins import BaseAction, NoResult, validate_result
from synapse_sdk.plugins.context import PluginEnvironment, RuntimeContext
from synapse_sdk.plugins.decorators import action
from synapse_sdk.plugins.errors import ActionNotFoundError, ExecutionError, PluginError, ValidationError
from synapse_sdk.plugins.types import ModelWeights, TestResults


class Params(BaseModel):
    epochs: int = 2


class Result(BaseModel):
    total: int


def ctx() -> RuntimeContext:
    return RuntimeContext(logger=NoOpLogger(), env=PluginEnvironment({}))


def test_params_model_from_the_generic_argument_and_defaults() -> None:
    class Train(BaseAction[Params]):
        def execute(self) -> dict:
            return {"epochs": self.params.epochs}

    assert Train.params_model is Params
    assert Train.result_model is NoResult
    assert Train.action_name is None and Train.input_type is None and Train.output_type is None


def test_explicit_params_model_wins_over_the_generic() -> None:
    class Other(BaseModel):
        x: int = 1

    class Train(BaseAction[Params]):
        params_model = Other

        def execute(self) -> dict:
            return {}

    assert Train.params_model is Other


def test_dispatch_validates_then_runs() -> None:
    class Train(BaseAction[Params]):
        def execute(self) -> dict:
            self.set_progress(1, 1, "train")
            self.set_metrics({"loss": 0.1}, "train")
            return {"epochs": self.params.epochs, "type": type(self.params).__name__}

    assert Train.dispatch({"epochs": 5}, ctx()) == {"epochs": 5, "type": "Params"}
    with pytest.raises(Exception) as info:  # pydantic's ValidationError, as upstream raises it
        Train.dispatch({"epochs": "many"}, ctx())
    assert "epochs" in str(info.value)


def test_run_calls_execute() -> None:
    class Echo(BaseAction[Params]):
        def execute(self) -> dict:
            return {"ran": True}

    assert Echo(Params(), ctx()).run() == {"ran": True}


def test_validate_result_only_warns() -> None:
    warnings: list[str] = []

    class Log:
        def warning(self, msg: str) -> None:
            warnings.append(msg)

    assert validate_result({"wrong": 1}, Result, Log()) == {"wrong": 1}
    assert warnings and "Result" in warnings[0]
    assert validate_result({"total": 1}, Result, Log()) == {"total": 1} and len(warnings) == 1
    assert validate_result(42, NoResult) == 42


def test_action_decorator_keeps_a_plain_function() -> None:
    @action(name="count", params=Params, description="counts")
    def count(params: Params, context) -> dict:
        return {"epochs": params.epochs}

    assert count(Params(epochs=3), ctx()) == {"epochs": 3}
    assert count.__name__ == "count"
    assert count._is_action is True and count._action_name == "count" and count._action_params is Params
    assert count._action_result is None and count._action_description == "counts"


def test_dispatch_gives_validators_the_client() -> None:
    from pydantic import ValidationInfo, field_validator

    client = object()

    class P(BaseModel):
        x: int = 0

        @field_validator("x")
        @classmethod
        def _saw_client(cls, v: int, info: ValidationInfo) -> int:
            assert info.context == {"client": client}
            return v

    class A(BaseAction[P]):
        def execute(self) -> dict:
            return {"x": self.params.x}

    assert A.dispatch({"x": 3}, RuntimeContext(logger=NoOpLogger(), env=PluginEnvironment({}), client=client)) == {"x": 3}


def test_error_hierarchy() -> None:
    for cls in (ValidationError, ActionNotFoundError, ExecutionError):
        assert issubclass(cls, PluginError) and issubclass(cls, Exception)


def test_data_type_markers_are_classes() -> None:
    assert isinstance(ModelWeights, type) and isinstance(TestResults, type)
