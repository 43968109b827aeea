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



def test_progress_snapshot_is_upstreams_rounded_one_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """``get_progress``: percent, elapsed and remaining time rounded to 0.01, elapsed from the step's start
    (reset by current == 0), as of the last ``set_progress`` (the shim computes it when asked)."""
    import time

    import synapse_runtime.actions.loggers as ours

    clock = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])  # upstream's logger calls time.monotonic()
    monkeypatch.setattr(ours, "monotonic", lambda: clock[0])  # ours imported it by name
    log = NoOpLogger()
    log.set_progress(0, 3, "s")
    clock[0] = 101.0
    log.set_progress(1, 3, "s")
    clock[0] = 250.0  # asking later changes nothing: the snapshot is of the last call
    p = log.get_progress("s")
    assert (p.percent, p.elapsed_time, p.time_remaining, p.status) == (33.33, 1.0, 2.0, "running")
    assert log.get_progress("s") == p
    log.set_progress(0, 3, "s")  # a restart resets the step's start
    assert (log.get_progress("s").elapsed_time, log.get_progress("s").time_remaining) == (0.0, None)


def test_subclass_hooks_get_what_upstream_hands_them() -> None:
    """``_log_impl(event, data, file, step, level)``, ``_on_progress(snapshot, step)``, ``_on_metrics(step, merged)``
    and ``_on_finish()``: the extension points upstream's own loggers are built on."""
    seen: list[tuple] = []

    class Recording(NoOpLogger):
        def _log_impl(self, event, data, file, step, level=None):  # type: ignore[no-untyped-def]
            seen.append(("log", event, data, file, step, level))

        def _on_progress(self, progress, step):  # type: ignore[no-untyped-def]
            seen.append(("progress", progress.percent, step))

        def _on_metrics(self, step, metrics):  # type: ignore[no-untyped-def]
            seen.append(("metrics", step, dict(metrics)))

        def _on_finish(self):  # type: ignore[no-untyped-def]
            seen.append(("finish",))

    log = Recording()
    log.set_step("train")
    log.info("hello")
    log.debug("dbg")
    log.log(LogLevel.WARNING, "custom", {"k": 1}, "/f", step="other")
    log.set_progress(1, 4)
    log.set_metrics({"loss": 1.0})
    log.set_metrics({"acc": 0.5})
    log.finish()
    assert seen == [
        ("log", "message", {"content": "hello"}, None, "train", LogLevel.INFO),
        ("log", "debug", {"content": "dbg"}, None, "train", LogLevel.DEBUG),
        ("log", "custom", {"k": 1}, "/f", "other", LogLevel.WARNING),
        ("progress", 25.0, "train"),
        ("metrics", "train", {"loss": 1.0}),
        ("metrics", "train", {"loss": 1.0, "acc": 0.5}),
        ("finish",),
    ]


def test_context_is_deprecated() -> None:
    """``context=`` is upstream's old name for the level: accepted with a DeprecationWarning (also beside ``level``)."""
    log = NoOpLogger()
    with pytest.warns(DeprecationWarning, match="'context' parameter is deprecated"):
        log.log_message("m", context="warning")
    with pytest.warns(DeprecationWarning):
        log.log_message("m", level=LogLevel.ERROR, context="info")
