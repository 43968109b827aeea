"""Upstream behaviour of ``synapse_sdk.plugins.steps``: registry, orchestrator, context, utility steps."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from synapse_sdk.loggers import NoOpLogger
from synapse_sdk.plugins.context import PluginEnvironment, RuntimeContext
from synapse_sdk.plugins.steps import (
    BaseStep,
    BaseStepContext,
    LoggingStep,
    Orchestrator,
    StepRegistry,
    StepResult,
    TimingStep,
    ValidationStep,
)


@dataclass
class Ctx(BaseStepContext):
    trail: list[str] = field(default_factory=list)


class Step(BaseStep[Ctx]):
    def __init__(self, name: str, *, fail: bool = False, skip: bool = False, proportion: int = 0) -> None:
        self._name, self.fail, self.skip, self._proportion = name, fail, skip, proportion

    @property
    def progress_proportion(self) -> int:  # a property upstream: overridden, never assigned
        return self._proportion

    @property
    def name(self) -> str:
        return self._name

    @property
    def progress_weight(self) -> float:
        return 0.5

    def can_skip(self, context: Ctx) -> bool:
        return self.skip

    def execute(self, context: Ctx) -> StepResult:
        context.trail.append(f"run:{self.name}:{context.current_step}:{context.current_step_order}")
        if self.fail:
            raise ValueError("boom")
        return StepResult(data={"n": self.name}, rollback_data={"undo": self.name})

    def rollback(self, context: Ctx, result: StepResult) -> None:
        context.trail.append(f"undo:{self.name}:{result.success}")


def make_ctx() -> Ctx:
    return Ctx(runtime_ctx=RuntimeContext(logger=NoOpLogger(), env=PluginEnvironment({})))


def test_registry_orders_and_proportions() -> None:
    reg: StepRegistry[Ctx] = StepRegistry()
    reg.register(Step("a", proportion=10))
    reg.register(Step("c"))
    reg.insert_before("c", Step("b", proportion=30))
    reg.insert_after("c", Step("d"))
    assert [s.name for s in reg.get_steps()] == ["a", "b", "c", "d"]
    assert reg.get_step_orders() == {"a": 0, "b": 1, "c": 2, "d": 3}
    assert reg.get_step_proportions() == {"a": 10, "b": 30}
    assert reg.total_weight == 2.0 and len(reg) == 4 and bool(reg)
    reg.unregister("b")
    assert reg.get_step_orders() == {"a": 0, "c": 1, "d": 2}
    with pytest.raises(ValueError):
        reg.insert_after("missing", Step("x"))
    assert not StepRegistry()


def test_orchestrator_takes_callback_and_before_step() -> None:
    reg: StepRegistry[Ctx] = StepRegistry()
    reg.register(Step("load", proportion=20))
    reg.register(Step("skip-me", skip=True, proportion=5))
    reg.register(Step("quiet"))  # proportion 0: no callback
    ctx = make_ctx()
    calls: list[tuple[int, int]] = []
    seen: list[str] = []
    result = Orchestrator(reg, ctx, lambda c, t: calls.append((c, t)), before_step=lambda n, c: seen.append(n)).execute()
    assert result == {"success": True, "steps_executed": 2, "steps_total": 3}
    assert calls == [(100, 100), (100, 100)]
    assert seen == ["load", "skip-me", "quiet"]
    assert ctx.trail == ["run:load:load:0", "run:quiet:quiet:2"]
    assert [r.skipped for r in ctx.step_results] == [False, True, False]
    assert ctx.current_step is None and ctx.current_step_order is None
    assert ctx.runtime_ctx.logger.get_step() is None


def test_orchestrator_sets_the_loggers_step_while_a_step_runs() -> None:
    class Peek(Step):
        def execute(self, context: Ctx) -> StepResult:
            log = context.runtime_ctx.logger
            context.trail.append(f"{log.get_step()}@{log.get_step_order()}")
            return StepResult()

    reg: StepRegistry[Ctx] = StepRegistry()
    reg.register(Peek("first"))
    reg.register(Peek("second"))
    ctx = make_ctx()
    Orchestrator(reg, ctx, lambda c, t: None).execute()
    assert ctx.trail == ["first@0", "second@1"]


def test_failure_rolls_back_in_reverse_including_the_failed_step() -> None:
    reg: StepRegistry[Ctx] = StepRegistry()
    for step in (Step("a"), Step("b"), Step("c", fail=True), Step("d")):
        reg.register(step)
    ctx = make_ctx()
    with pytest.raises(RuntimeError, match="^Step 'c' failed: boom$"):
        Orchestrator(reg, ctx, lambda c, t: None).execute()
    assert [t for t in ctx.trail if t.startswith("undo")] == ["undo:c:False", "undo:b:True", "undo:a:True"]
    assert ctx.step_results[-1].success is False and ctx.step_results[-1].error == "boom"
    assert ctx.current_step is None


def test_step_context_progress_and_metrics_use_the_current_step() -> None:
    ctx = make_ctx()
    with pytest.raises(ValueError):
        ctx.set_metrics({"x": 1})
    ctx._set_current_step("convert", order=3)
    assert ctx.current_step_order == 3
    ctx.set_progress(1, 2)
    ctx.set_metrics({"x": 1})
    log = ctx.runtime_ctx.logger
    assert log.get_progress("convert").percent == 50.0 and log.get_metrics("convert") == {"x": 1}
    ctx._set_current_step(None, order=3)
    assert ctx.current_step_order is None


def test_utility_steps_wrap_names_timing_and_validation() -> None:
    timed = TimingStep(Step("work"))
    logged = LoggingStep(Step("work"))
    assert (timed.name, logged.name, timed.progress_weight) == ("timed_work", "logged_work", 0.5)
    ctx = make_ctx()
    assert timed.execute(ctx).data["duration_seconds"] >= 0
    assert logged.execute(ctx).success
    check = ValidationStep(lambda c: (False, "no data"), name="check")
    assert (check.name, check.progress_weight) == ("check", 0.05)
    res = check.execute(ctx)
    assert res.success is False and res.error == "no data"
    assert ValidationStep(lambda c: (True, None)).execute(ctx).success


def test_step_result_defaults() -> None:
    r = StepResult()
    assert (r.success, r.data, r.error, r.rollback_data, r.skipped) == (True, {}, None, {}, False)
    assert r.timestamp is not None
