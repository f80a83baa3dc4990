"""train.nproc_per_node = 2: two gloo processes under torchrun's launcher, in the real
`dvc repro`, checked in the MLflow store and in the bytes on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

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

    # Epoch metrics are reduced over all rows, not one process's shard: every val accuracy
    # is a whole number of all the val rows (a shard's would be k / its half of them).
    n_val = len(json.loads((project / "reports/train_history.json").read_text()))
    assert n_val == SMALL["train"]["epochs"]
    val_rows = _rows(project / "data/split/val.parquet")
    history = client.get_metric_history(only.info.run_id, "val_accuracy")
    assert [m.step for m in history] == list(range(1, SMALL["train"]["epochs"] + 1))
    for m in history:
        assert abs(m.value * val_rows - round(m.value * val_rows)) < 1e-6, (m.value, val_rows)

    # A batch split over two processes takes the same steps: close to one process's model.
    accuracy = {
        p.name: json.loads((p / "reports/metrics.json").read_text())["accuracy"]
        for p in (single, project)
    }
    assert abs(accuracy["two"] - accuracy["single"]) <= 0.03, accuracy


def _rows(path: Path) -> int:
    return int(pq.ParquetFile(path).metadata.num_rows)
