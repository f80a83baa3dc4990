"""train.nproc_per_node = 2: two gloo processes under torchrun's launcher, in the real
`dvc repro`, checked in the MLflow store and in the bytes on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from epochline.training.model import from_checkpoint, to_tensors
from tests.conftest import SMALL, copy_project, run, store, trained_run

pytestmark = pytest.mark.slow

OUTPUTS = ("models/model.pt", "models/model.json", "reports/train_history.json",
           "reports/metrics.json", "reports/test_predictions.parquet")  # fmt: skip


def test_two_processes_log_one_run_with_reduced_epoch_metrics_and_repeat_byte_for_byte(
    tmp_path: Path,
) -> None:
    single = copy_project(tmp_path / "single")
    run(["dvc", "repro"], single)
    project = copy_project(tmp_path / "two", {"train": {"nproc_per_node": 2}})
    done = run(["dvc", "repro"], project)
    assert "rank 1/2 on cpu" in done.stderr, done.stderr

    first = {name: (project / name).read_bytes() for name in OUTPUTS}
    run(["dvc", "repro", "--force", "--downstream", "train"], project)  # again, new processes
    changed = [name for name in OUTPUTS if (project / name).read_bytes() != first[name]]
    assert changed == [], f"two processes gave other bytes the second time: {changed}"

    # Rank 0 alone logged: one run (the repeat found the same model and reused it).
    client = store(project)
    (only,) = client.search_runs([client.get_experiment_by_name("epochline").experiment_id])
    assert only.info.run_id == trained_run(project).info.run_id
    assert only.info.status == "FINISHED"
    assert only.data.params["train.nproc_per_node"] == "2"

    # Epoch metrics are reduced over all rows, not one process's shard: the last epoch's
    # are what the saved model scores on every val row, computed here apart from training.
    epochs = len(json.loads((project / "reports/train_history.json").read_text()))
    assert epochs == SMALL["train"]["epochs"]
    correct, loss, val_rows = _scored_on_all_val_rows(project)
    history = client.get_metric_history(only.info.run_id, "val_accuracy")
    assert [m.step for m in history] == list(range(1, SMALL["train"]["epochs"] + 1))
    assert history[-1].value == correct / val_rows, (history[-1].value, correct, val_rows)
    (last_loss,) = client.get_metric_history(only.info.run_id, "val_loss")[-1:]
    assert last_loss.value == pytest.approx(loss / val_rows, rel=1e-5)

    # A batch split over two processes takes the same steps: close to one process's model.
    accuracy = {
        p.name: json.loads((p / "reports/metrics.json").read_text())["accuracy"]
        for p in (single, project)
    }
    assert abs(accuracy["two"] - accuracy["single"]) <= 0.03, accuracy


def _scored_on_all_val_rows(project: Path) -> tuple[int, float, int]:
    """(correct answers, summed loss, rows) of the saved model on all of val.parquet."""
    checkpoint = torch.load(project / "models/model.pt", weights_only=True)
    net = from_checkpoint(checkpoint)
    config = checkpoint["config"]
    val = pd.read_parquet(project / "data/split/val.parquet")
    x, y = to_tensors(val, config["columns"], config["label"])
    with torch.no_grad():
        logits = net.logits(x)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="sum")
    correct = int(((logits > 0) == (y > 0.5)).sum())
    return correct, float(loss), len(val)
