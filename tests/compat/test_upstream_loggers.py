"""Upstream behaviour of ``synapse_sdk.loggers`` (BaseLogger state, NoOpLogger, levels), both modes."""

from __future__ import annotations

import pytest

from synapse_sdk.loggers import BaseLogger, NoOpLogger
from synapse_sdk.plugins.models.logger import LogLevel


def test_log_level_is_a_str_enum_with_upstreams_values() -> None:
    assert [lvl.value for lvl in LogLevel] == ["debug", "info", "success", "warning", "danger", "error", "critical"]
    assert LogLevel.INFO == "info" and isinstance(LogLevel.SUCCESS, str)


def test_noop_logger_is_a_base_logger_and_keeps_state() -> None:
    log = NoOpLogger()
    assert isinstance(log, BaseLogger)
    log.log_message("quiet", LogLevel.INFO)
    log.log_event("e", {"a": 1})
    log.log_metric("train", "loss", 0.5, acc=0.9)
    log.log_visualization("val", "epoch_1", 0, "/tmp/x.png")
    log.log_trials({"trials": {}})
    log.set_progress(3, 4, "train")
    assert log.get_progress("train").percent == 75.0


def test_current_step_and_order() -> None:
    log = NoOpLogger()
    assert log.get_step() is None and log.get_step_order() is None
    log.set_step("upload", order=2)
    assert (log.get_step(), log.get_step_order()) == ("upload", 2)
    log.set_step(None, order=5)  # clearing the step clears its order
    assert (log.get_step(), log.get_step_order()) == (None, None)


def test_progress_falls_back_to_the_current_step() -> None:
    log = NoOpLogger()
    log.set_step("convert")
    log.set_progress(1, 4)
    assert log.get_progress("convert").percent == 25.0
    assert log.get_progress() is None  # nothing for the run itself


def test_progress_without_step_is_the_runs_own() -> None:
    log = NoOpLogger()
    log.set_progress(1, 3)
    assert log.get_progress().percent == pytest.approx(33.33)


@pytest.mark.parametrize(("current", "total"), [(1, 0), (5, 4), (-1, 4)])
def test_progress_rejects_impossible_counts(current: int, total: int) -> None:
    with pytest.raises(ValueError):
        NoOpLogger().set_progress(current, total, "s")


def test_metrics_merge_per_step_and_copies_are_returned() -> None:
    log = NoOpLogger()
    log.set_metrics({"loss": 1.0}, "train")
    log.set_metrics({"acc": 0.5}, "train")
    log.set_metrics({"loss": 2.0}, "val")
    assert log.get_metrics("train") == {"loss": 1.0, "acc": 0.5}
    assert log.get_metrics() == {"train": {"loss": 1.0, "acc": 0.5}, "val": {"loss": 2.0}}
    log.get_metrics("train")["loss"] = 99
    assert log.get_metrics("train")["loss"] == 1.0


def test_metrics_use_the_current_step_and_need_one() -> None:
    log = NoOpLogger()
    with pytest.raises(ValueError):
        log.set_metrics({"x": 1})
    log.set_step("eval")
    log.set_metrics({"x": 1})
    assert log.get_metrics("eval") == {"x": 1}


def test_metrics_must_be_a_mapping() -> None:
    with pytest.raises(TypeError):
        NoOpLogger().set_metrics([1, 2], "train")  # type: ignore[arg-type]


def test_log_takes_level_event_data_file_step() -> None:
    log = NoOpLogger()
    log.log(LogLevel.INFO, "checkpoint", {"epoch": 1}, None, "train")
    with pytest.raises(TypeError):
        log.log(LogLevel.INFO, "checkpoint", ["not", "a", "dict"])  # type: ignore[arg-type]


def test_finish_ends_logging() -> None:
    log = NoOpLogger()
    log.finish()
    with pytest.raises(RuntimeError):
        log.set_progress(1, 2, "s")
    with pytest.raises(RuntimeError):
        log.log(LogLevel.INFO, "late", {})


def test_message_data_shape() -> None:
    assert BaseLogger._build_message_data("hello") == {"content": "hello"}
    assert BaseLogger._build_message_data("hello", key="CODE") == {"content": "hello", "key": "CODE"}


def test_progress_record_hook_defaults_to_none() -> None:
    assert NoOpLogger().get_progress_record(time_elapsed=3) is None
