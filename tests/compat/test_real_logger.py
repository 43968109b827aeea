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
    from synapse_runtime.inprocess import MemoryWriter

    writer = MemoryWriter()
    log = event_logger_class()(writer)
    log.writer_events = writer.events
    return log


def test_it_is_upstreams_base_logger_with_every_public_method_of_its_loggers(logger) -> None:
    from synapse_sdk.loggers import BaseLogger, ConsoleLogger, NoOpLogger

    assert isinstance(logger, BaseLogger)
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
    assert ev[0] == {"type": "message", "message": "hello", "context": "info"}
    assert ev[1] == {"type": "message", "message": "done", "context": "success"}
    assert ev[2] == {"type": "dev_event", "message": "internal", "data": None}
    assert ev[3] == {"type": "event", "event": "checkpoint", "data": {"epoch": 1}, "file": "/tmp/ckpt"}
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
