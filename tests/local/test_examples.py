"""The example plugins do real work: train on the bundled digits, then predict with the checkpoint."""

from __future__ import annotations

import json

from tests.ci import require_module

require_module("sklearn", "the digits example needs scikit-learn (pip install -e '.[examples]')")


def test_train_then_infer_then_evaluate(run_cli, tmp_path) -> None:
    train = run_cli("digits", "train", {"epochs": 8, "seed": 1})
    assert train.exit_code == 0, train.error
    assert train.value["val_accuracy"] > 0.9
    metrics = train.of_type("metrics")
    assert [m["values"]["epoch"] for m in metrics] == list(range(1, 9))
    losses = [m["values"]["loss"] for m in metrics]
    assert losses[-1] < losses[0]
    progress = train.of_type("progress")
    assert progress[0]["current"] == 1 and progress[-1]["current"] == 8 and progress[-1]["category"] == "train"
    archive = train.output_dir / "model.zip"
    assert archive.is_file() and (train.output_dir / "checkpoint" / "model.npz").is_file()

    infer = run_cli("digits", "infer", {"samples": 40, "batch_size": 16}, env={"SYNAPSE_CHECKPOINT": str(archive)})
    assert infer.exit_code == 0, infer.error
    v = infer.value
    assert v["processed_count"] == 40 and len(v["results"]) == 40 and v["accuracy"] > 0.85
    assert [e["data"]["name"] for e in infer.of_type("event") if e["event"] == "step"] == [
        "load_model", "preprocess", "predict", "write_predictions"]
    lines = (infer.output_dir / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 40 and set(json.loads(lines[0])) == {"prediction", "confidence", "label"}
    assert infer.events[1]["type"] in ("download", "progress", "event")

    ev = run_cli("digits", "evaluate", {"model_path": str(train.output_dir / "checkpoint")})
    assert ev.exit_code == 0 and abs(ev.value["accuracy"] - train.value["val_accuracy"]) < 1e-3


def test_infer_rejects_malformed_images(run_cli) -> None:
    r = run_cli("digits", "infer", {"inputs": [[0.0] * 63]})
    assert r.exit_code == 2 and "has 63 values" in r.error["message"]


def test_training_below_min_accuracy_fails_cleanly(run_cli) -> None:
    r = run_cli("digits", "train", {"epochs": 1, "learning_rate": 0.0001, "min_accuracy": 0.99})
    assert r.exit_code == 1 and r.error["error_type"] == "ExecutionError"
    assert not (r.output_dir / "model.zip").exists()
