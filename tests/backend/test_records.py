"""Upstream's record shapes from progress/metrics events, and log entries from the other events."""

from __future__ import annotations

from synapse_runtime.backend.records import MetricsRecord, ProgressRecord, log_entry


def test_time_remaining_is_upstreams_estimate():
    record = ProgressRecord()
    record.update("train", 0, 10, 0.0, t=100.0)
    record.update("train", 5, 10, 50.0, t=105.0)  # 1 s per unit so far, 5 units left
    step = record.to_dict()["record"]["steps"]["train"]
    assert step == {"order": 0, "percent": 50.0, "time_remaining": 5.0}
    record.update("train", 0, 10, 0.0, t=200.0)  # current 0 restarts the step's clock
    record.update("train", 2, 10, 20.0, t=201.0)
    assert record.to_dict()["record"]["steps"]["train"]["time_remaining"] == 4.0


def test_steps_get_orders_as_they_appear_and_current_progress_follows_the_latest():
    record = ProgressRecord()
    record.update("model_load", 1, 1, None, t=0.0)
    record.update("inference", 1, 4, None, t=1.0)
    data = record.to_dict(time_elapsed=7)
    assert data["record"]["steps"]["model_load"]["order"] == 0
    assert data["record"]["steps"]["inference"] == {"order": 1, "percent": 25.0, "time_remaining": 0.0}
    assert data["current_progress"] == {"overall": 25.0, "step": "inference", "percent": 25.0,
                                        "time_remaining": 0.0, "order": 1, "time_elapsed": 7}


def test_proportions_are_listed_as_given_and_weight_overall_normalised():
    record = ProgressRecord({"model_load": 0.2, "inference": 0.6, "postprocess": 0.2})
    before = record.to_dict()["record"]["steps"]
    assert before["postprocess"] == {"proportion": 0.2, "order": 2}  # listed before it starts
    record.update("model_load", 1, 1, None, t=0.0)
    record.update("inference", 1, 2, None, t=1.0)
    assert record.current_progress()["overall"] == 20.0 + 30.0
    record.update("inference", 0, 2, None, t=2.0)  # a step going back does not move the bar back
    assert record.current_progress()["overall"] == 50.0
    record.update("inference", 2, 2, None, t=3.0)
    record.update("postprocess", 1, 1, None, t=4.0)
    assert record.current_progress()["overall"] == 100.0


def test_configured_steps_keep_registry_order_and_upstreams_weighted_total():
    """What upstream's orchestrator hands JobLogger.set_step_proportions: proportions of the steps
    that have one (summing to 100, as the built-in actions' do) and every step's registry order."""
    record = ProgressRecord()
    assert record.configure({"initialize": 1, "upload": 34, "generate": 58, "cleanup": 7},
                            {"initialize": 0, "scan": 1, "upload": 2, "generate": 3, "cleanup": 4})
    steps = record.to_dict()["record"]["steps"]
    assert list(steps) == ["initialize", "upload", "generate", "cleanup"]
    assert [(s["proportion"], s["order"]) for s in steps.values()] == [(1, 0), (34, 2), (58, 3), (7, 4)]
    record.update("initialize", 1, 1, None, t=0.0)
    record.update("scan", 1, 2, None, t=1.0)  # no proportion: its registry order, no weight
    assert record.to_dict()["record"]["steps"]["scan"]["order"] == 1
    assert record.current_progress()["overall"] == 1.0
    record.update("upload", 1, 2, None, t=2.0)
    assert record.current_progress()["overall"] == 1 + 17.0
    record.update("upload", 2, 2, None, t=3.0)
    record.update("generate", 1, 4, None, t=4.0)
    assert record.current_progress() | {"time_remaining": None} == {
        "overall": 1 + 34 + 14.5, "step": "generate", "percent": 25.0, "time_remaining": None, "order": 3}
    # Once progress was recorded the weights stay (upstream refuses set_step_proportions then).
    assert record.configure({"other": 100}) is False
    assert "other" not in record.to_dict()["record"]["steps"]


def test_without_categories_percent_sits_in_record():
    record = ProgressRecord()
    record.update(None, 1, 4, 25.0, t=0.0)
    data = record.to_dict()
    assert data["record"] == {"steps": {}, "percent": 25.0, "time_remaining": 0.0}
    assert data["current_progress"]["overall"] == 25.0 and data["current_progress"]["step"] is None


def test_metrics_record_merges_per_category():
    metrics = MetricsRecord()
    metrics.update("train", {"loss": 1.0})
    metrics.update("train", {"loss": 0.5, "acc": 0.8})
    metrics.update("val", {"acc": 0.7})
    assert metrics.to_dict() == {"record": {"steps": {"train": {"loss": 0.5, "acc": 0.8}, "val": {"acc": 0.7}}}}


def test_log_entries():
    base = {"v": 1, "ts": "2026-01-01T00:00:00.000Z", "seq": 1, "job_id": "j"}
    assert log_entry({**base, "type": "message", "message": "hi", "context": "danger"}, "j", None) == {
        "event": "message", "data": {"content": "hi"}, "level": "danger",
        "datetime": "2026-01-01T00:00:00.000+00:00", "job": "j"}
    assert log_entry({**base, "type": "log", "level": "CRITICAL", "logger": "x", "message": "m"}, "j", "s")["level"] == "critical"
    assert log_entry({**base, "type": "event", "event": "trials", "data": [1], "file": None}, "j")["data"] == {"value": [1]}
    assert log_entry({**base, "type": "progress"}, "j") is None


def test_message_entries_keep_the_code_key_and_the_precise_level():
    base = {"v": 1, "ts": "2026-01-01T00:00:00.000Z", "seq": 1, "job_id": "j", "type": "message"}
    coded = log_entry({**base, "message": "Storage and paths initialized", "context": "info",
                       "key": "UPLOAD_INITIALIZED", "step": "initialize"}, "j", "initialize")
    assert coded == {"event": "message", "data": {"content": "Storage and paths initialized", "key": "UPLOAD_INITIALIZED"},
                     "level": "info", "datetime": "2026-01-01T00:00:00.000+00:00", "job": "j", "step": "initialize"}
    # upstream's ERROR is folded into the UI's `danger` context on the stream; the entry says error
    assert log_entry({**base, "message": "m", "context": "danger", "level": "error"}, "j")["level"] == "error"
    assert "key" not in log_entry({**base, "message": "m", "context": "info"}, "j")["data"]
