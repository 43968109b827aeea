"""Real-package mode's logger (compat/real_logger.py): upstream's BaseLogger writing our events.

Only meaningful where the real synapse-sdk is installed (``make test-sdk``); left out in shim mode.
"""

from __future__ import annotations

import inspect

import pytest

pytestmark = pytest.mark.real_sdk


@pytest.fixture
def logger():
    from synapse_runtime.compat.real_logger import event_logger_class
    from synapse_runtime.contract.inprocess import MemoryWriter

    writer = MemoryWriter()
    log = event_logger_class()(writer)
    log.writer_events = writer.events
    return log


def test_it_is_upstreams_base_logger_with_every_public_method_of_its_loggers(logger) -> None:
    from synapse_sdk.loggers import BaseLogger, ConsoleLogger, JobLogger, NoOpLogger

    assert isinstance(logger, BaseLogger)
    assert isinstance(logger, JobLogger)  # upstream's orchestrator hands step proportions to a JobLogger only
    assert not inspect.isabstract(type(logger))
    public = {n for cls in (BaseLogger, ConsoleLogger, NoOpLogger) for n, v in vars(cls).items()
              if not n.startswith("_") and callable(v)}
    missing = sorted(n for n in public if not callable(getattr(logger, n, None)))
    assert missing == []


def test_events_in_the_contracts_shapes(logger) -> None:
    from synapse_sdk.plugins.models.logger import LogLevel

    logger.set_step("train", order=0)
    logger.info("hello")
    logger.log_message("done", "success")  # plain-string level: the deliberate deviation
    logger.debug("internal")
    logger.log(LogLevel.WARNING, "checkpoint", {"epoch": 1}, "/tmp/ckpt")
    logger.set_progress(1, 4)
    logger.set_metrics({"loss": 0.5})
    logger.log_metric("train", "loss", 0.5, acc=0.9)
    logger.set_progress_failed("train")
    ev = logger.writer_events
    # Each log event says the step it was logged in (the logger's current step here).
    assert ev[0] == {"type": "message", "message": "hello", "context": "info", "step": "train"}
    assert ev[1] == {"type": "message", "message": "done", "context": "success", "step": "train"}
    assert ev[2] == {"type": "dev_event", "message": "internal", "data": None, "step": "train"}
    assert ev[3] == {"type": "event", "event": "checkpoint", "data": {"epoch": 1}, "file": "/tmp/ckpt", "step": "train"}
    assert ev[4]["type"] == "progress" and (ev[4]["current"], ev[4]["total"], ev[4]["category"]) == (1, 4, "train")
    assert ev[5] == {"type": "metrics", "category": "train", "values": {"loss": 0.5}}
    assert ev[6]["event"] == "metric" and ev[6]["data"]["metrics"] == {"acc": 0.9}
    assert ev[7]["type"] == "message" and ev[7]["context"] == "danger"
    assert logger.get_progress("train").status == "failed"


def test_upstream_rules_hold(logger) -> None:
    with pytest.raises(ValueError):
        logger.set_progress(5, 4, "x")
    with pytest.raises(ValueError):
        logger.log_message("x", "loud")
    logger.finish()
    with pytest.raises(RuntimeError):
        logger.info("after finish")


def test_a_log_message_code_keeps_its_key_and_the_step_it_was_logged_in(logger) -> None:
    """``ctx.log_message(<LogMessageCode>)`` sends {"content", "key"} upstream; the event keeps both."""
    from synapse_sdk.plugins.actions.upload.log_messages import UploadLogMessageCode
    from synapse_sdk.plugins.context import RuntimeContext
    from synapse_sdk.plugins.context.env import PluginEnvironment

    ctx = RuntimeContext(logger=logger, env=PluginEnvironment({}), language="en")
    ctx.log_message(UploadLogMessageCode.UPLOAD_INITIALIZED)  # outside any step: step null
    logger.set_step("upload", order=1)
    ctx.log_message(UploadLogMessageCode.UPLOAD_METADATA_INVALID_HEADER, header="x")
    ctx.log_message("plain", step="explicit")
    first, second, third = logger.writer_events
    assert first == {"type": "message", "message": "Storage and paths initialized", "context": "info",
                     "key": "UPLOAD_INITIALIZED", "step": None}
    assert second["key"] == "UPLOAD_METADATA_INVALID_HEADER" and second["step"] == "upload"
    assert (second["context"], second["level"]) == ("danger", "error")
    assert "key" not in third and third["step"] == "explicit"


def test_upstreams_orchestrator_hands_the_step_proportions_on(logger) -> None:
    from synapse_sdk.plugins.context import RuntimeContext
    from synapse_sdk.plugins.context.env import PluginEnvironment
    from synapse_sdk.plugins.steps import BaseStep, BaseStepContext, Orchestrator, StepRegistry, StepResult

    heard: list[tuple[dict, dict]] = []
    logger.on_steps = lambda proportions, orders: heard.append((dict(proportions), dict(orders)))

    def step(step_name: str, share: int) -> BaseStep:
        class S(BaseStep):
            name = step_name
            progress_weight = share / 100
            progress_proportion = share

            def execute(self, context):
                context.set_progress(1, 2)
                return StepResult(success=True)

        return S()

    registry = StepRegistry()
    for name, share in (("a", 30), ("quiet", 0), ("b", 70)):
        registry.register(step(name, share))
    ctx = RuntimeContext(logger=logger, env=PluginEnvironment({}))
    Orchestrator(registry=registry, context=BaseStepContext(runtime_ctx=ctx),
                 progress_callback=lambda c, t: ctx.set_progress(c, t)).execute()
    assert heard == [({"a": 30, "b": 70}, {"a": 0, "quiet": 1, "b": 2})]
    # upstream's own bookkeeping holds too: the record it would finalise lists the steps in order
    record = logger.get_progress_record()
    assert [(n, s["proportion"], s["order"]) for n, s in record["record"]["steps"].items()
            if "proportion" in s] == [("a", 30, 0), ("b", 70, 2)]
    with pytest.raises(RuntimeError):  # upstream's rule: not once progress has started
        logger.set_step_proportions({"c": 100})
