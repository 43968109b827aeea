"""Steps (order, skip, weighted progress, rollback) and BaseInferenceAction's two modes."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from synapse_runtime import (
    BaseInferenceAction,
    BaseStep,
    Cancelled,
    InferenceContext,
    InferenceProgressCategories,
    MemoryLogger,
    Orchestrator,
    RuntimeContext,
    StepRegistry,
    StepResult,
)
from synapse_runtime.errors import ExitCode, StorageError, exit_code_for
from synapse_runtime.actions.steps import BaseStepContext, StepFailedError


class Step(BaseStep[BaseStepContext]):
    def __init__(self, name: str, weight: float = 0.5, *, skip: bool = False, fail: BaseException | None = None,
                 ok: bool = True, journal: list | None = None) -> None:
        self._name, self._weight, self.skip, self.fail, self.ok = name, weight, skip, fail, ok
        self.journal = journal if journal is not None else []

    @property
    def name(self) -> str:
        return self._name

    @property
    def progress_weight(self) -> float:
        return self._weight

    def can_skip(self, context) -> bool:
        return self.skip

    def execute(self, context) -> StepResult:
        self.journal.append(("run", self.name))
        if self.fail is not None:
            raise self.fail
        return StepResult(success=self.ok, error=None if self.ok else "said no", rollback_data={"n": self.name})

    def rollback(self, context, result: StepResult) -> None:
        self.journal.append(("undo", self.name, result.success, result.error))


def context() -> BaseStepContext:
    return BaseStepContext(runtime_ctx=RuntimeContext(logger=MemoryLogger()))


def test_registry_operations() -> None:
    r: StepRegistry = StepRegistry()
    assert not r and len(r) == 0
    a, b, c, d = Step("a", 0.25), Step("b", 0.25), Step("c", 0.25), Step("d", 0.25)
    r.register(a)
    r.register(c)
    r.insert_before("c", b)
    r.insert_after("c", d)
    assert [s.name for s in r.get_steps()] == ["a", "b", "c", "d"]
    assert r.total_weight == 1.0 and len(r) == 4 and bool(r)
    r.unregister("b")
    assert [s.name for s in r.get_steps()] == ["a", "c", "d"]
    with pytest.raises(ValueError):
        r.register(Step("a"))
    with pytest.raises(ValueError):
        r.insert_after("zzz", Step("e"))


def test_success_skip_and_weighted_progress() -> None:
    journal: list = []
    r: StepRegistry = StepRegistry()
    r.register(Step("a", 0.2, journal=journal))
    r.register(Step("b", 0.3, skip=True, journal=journal))
    r.register(Step("c", 0.5, journal=journal))
    ctx = context()
    out = Orchestrator(r, ctx).execute()
    assert out == {"success": True, "steps_executed": 2, "steps_total": 3}
    assert journal == [("run", "a"), ("run", "c")]
    assert [res.skipped for res in ctx.step_results] == [False, True, False]
    overall = [e["current"] for e in ctx.runtime_ctx.logger.of_type("progress") if e["category"] is None]
    assert overall == [20.0, 50.0, 100.0]


def test_failure_rolls_back_every_executed_step_in_reverse_including_the_failed_one() -> None:
    journal: list = []
    r: StepRegistry = StepRegistry()
    r.register(Step("a", journal=journal))
    r.register(Step("b", skip=True, journal=journal))
    r.register(Step("c", journal=journal))
    r.register(Step("d", fail=ValueError("boom"), journal=journal))
    r.register(Step("e", journal=journal))
    ctx = context()
    with pytest.raises(RuntimeError, match=r"^Step 'd' failed: boom$") as err:
        Orchestrator(r, ctx).execute()
    assert isinstance(err.value, StepFailedError)
    assert journal == [("run", "a"), ("run", "c"), ("run", "d"),
                       ("undo", "d", False, "boom"), ("undo", "c", True, None), ("undo", "a", True, None)]
    assert ctx.errors == ["d: boom"]


def test_step_returning_failure_is_a_failure() -> None:
    journal: list = []
    r: StepRegistry = StepRegistry()
    r.register(Step("a", journal=journal))
    r.register(Step("b", ok=False, journal=journal))
    with pytest.raises(RuntimeError, match="Step 'b' failed: said no"):
        Orchestrator(r, context()).execute()
    assert journal[-2:] == [("undo", "b", False, "said no"), ("undo", "a", True, None)]


def test_cancellation_rolls_back_and_propagates() -> None:
    journal: list = []
    r: StepRegistry = StepRegistry()
    r.register(Step("a", journal=journal))
    r.register(Step("b", fail=Cancelled(15), journal=journal))
    with pytest.raises(Cancelled):
        Orchestrator(r, context()).execute()
    assert journal[-2:] == [("undo", "b", False, "cancelled"), ("undo", "a", True, None)]


def test_a_failing_rollback_does_not_stop_the_others() -> None:
    journal: list = []

    class BadUndo(Step):
        def rollback(self, context, result):
            raise OSError("disk gone")

    r: StepRegistry = StepRegistry()
    r.register(Step("a", journal=journal))
    r.register(BadUndo("b", journal=journal))
    r.register(Step("c", fail=ValueError("x"), journal=journal))
    ctx = context()
    with pytest.raises(RuntimeError):
        Orchestrator(r, ctx).execute()
    assert ("undo", "a", True, None) in journal
    assert "rollback of b: disk gone" in ctx.errors


def test_step_failure_keeps_the_exit_code_of_a_storage_cause() -> None:
    r: StepRegistry = StepRegistry()
    r.register(Step("fetch", fail=StorageError("s3 down")))
    with pytest.raises(StepFailedError) as err:
        Orchestrator(r, context()).execute()
    assert exit_code_for(err.value) == ExitCode.STORAGE


class P(BaseModel):
    model_id: int | None = None
    inputs: list[dict] = []


def test_inference_progress_categories_and_category() -> None:
    assert InferenceProgressCategories.MODEL_LOAD == "model_load"
    assert InferenceProgressCategories.INFERENCE == "inference"
    assert InferenceProgressCategories.POSTPROCESS == "postprocess"
    assert BaseInferenceAction.category == "neural_net"
    assert BaseInferenceAction.progress is InferenceProgressCategories


def test_inference_simple_mode_uses_load_model_and_infer() -> None:
    class Simple(BaseInferenceAction[P]):
        def load_model(self, model_id):
            return {"id": model_id, "scale": 2}

        def infer(self, model, inputs):
            return [{"y": i["x"] * model["scale"]} for i in inputs]

    ctx = RuntimeContext(logger=MemoryLogger())
    out = Simple.dispatch({"model_id": 1, "inputs": [{"x": 1}, {"x": 2}]}, ctx)
    assert out == {"results": [{"y": 2}, {"y": 4}]}
    cats = [e["category"] for e in ctx.logger.of_type("progress")]
    assert cats == ["model_load", "inference"]


def test_inference_step_mode_adds_processed_count_and_results() -> None:
    class Predict(BaseStep[InferenceContext]):
        name = "predict"
        progress_weight = 1.0

        def execute(self, context: InferenceContext) -> StepResult:
            assert context.model_id == 5 and context.params["model_id"] == 5 and context.batch_size == 1
            context.results.append({"ok": True})
            context.processed_count = 1
            return StepResult()

    class Stepped(BaseInferenceAction[P]):
        def setup_steps(self, registry):
            registry.register(Predict())

        def execute(self):  # must not be called in step mode
            raise AssertionError("execute called")

    out = Stepped.dispatch({"model_id": 5}, RuntimeContext(logger=MemoryLogger()))
    assert out == {"success": True, "steps_executed": 1, "steps_total": 1, "processed_count": 1,
                   "results": [{"ok": True}]}


def test_inference_without_client_or_registry_explains_what_to_set() -> None:
    class A(BaseInferenceAction[P]):
        pass

    a = A(P(), RuntimeContext(logger=MemoryLogger(), env={}))
    with pytest.raises(RuntimeError, match="SYNAPSE_HOST and SYNAPSE_ACCESS_TOKEN"):
        a.client  # noqa: B018
    with pytest.raises(RuntimeError, match="SYNAPSE_MODELS_FILE"):
        a.get_model(1)
    with pytest.raises(NotImplementedError):
        a.infer(None, [])


def test_download_model_without_file_url_is_a_value_error() -> None:
    class Client:
        def get_model(self, model_id):
            return {"id": model_id, "name": "m"}

    class A(BaseInferenceAction[P]):
        pass

    a = A(P(), RuntimeContext(logger=MemoryLogger(), client=Client()))
    assert a.client is not None and a.get_model(3) == {"id": 3, "name": "m"}
    with pytest.raises(ValueError, match="has no file URL"):
        a.download_model(3)
