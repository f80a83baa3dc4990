"""`epochline seeds N` end to end: real DVC, real MLflow store, a temp git repo on the shrunk
config. One parent run with each test metric's spread, N children trained as the train stage
trains and scored as evaluate scores."""

from __future__ import annotations

import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from epochline.core.params import Params, load_params
from epochline.evaluation import metrics
from epochline.review import seeds
from epochline.serving.scoring import LoggedModel
from tests.conftest import copy_project, run, store, trained_run

pytestmark = pytest.mark.slow

EPOCHLINE = str(Path(sys.executable).parent / "epochline")


def test_seeds_3_makes_one_parent_with_the_spread_and_three_children(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    run(["dvc", "repro"], project)  # the pipeline's own run (train.seed 42), for comparison
    pipeline_run = trained_run(project)
    checkpoint = (project / "models/model.pt").read_bytes()

    done = run([EPOCHLINE, "seeds", "3"], project)

    client = store(project)
    experiment = client.get_experiment_by_name("epochline")
    assert experiment is not None
    everything = client.search_runs([experiment.experiment_id])
    parents = [r for r in everything if "epochline.seeds" in r.data.tags]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.data.tags["epochline.seeds"] == "42,43,44"
    assert parent.info.status == "FINISHED"
    children = seeds.children(client, parent.info.run_id)
    assert [c.data.params["train.seed"] for c in children] == ["42", "43", "44"]
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert len(everything) == 5  # the pipeline's run stays its own: not re-parented
    assert "mlflow.parentRunId" not in client.get_run(pipeline_run.info.run_id).data.tags

    # The spread on the parent is numpy's, over the children's logged test metrics.
    for name in metrics.NAMES:
        column = np.array([c.data.metrics[f"test_{name}"] for c in children])
        logged = {s: parent.data.metrics[f"test_{name}_{s}"] for s in seeds.STATS}
        assert logged == pytest.approx({"mean": column.mean(), "std": column.std(ddof=1),
                                        "min": column.min(), "max": column.max()})  # fmt: skip
    assert seeds.spread(parent) is not None
    # The parent holds the params but the seed; each child its own seed among them.
    flat = {k: str(v) for k, v in Params().flat().items()} | pipeline_run.data.params
    assert parent.data.params == {k: v for k, v in flat.items() if k != "train.seed"}
    assert children[1].data.params == flat | {"train.seed": "43"}
    assert parent.info.run_name.startswith("seeds 42-44 · ")

    _each_child_is_its_logged_model_scored(project, children)
    # Seed 42 trained by the train stage's code: the very model the pipeline made.
    tags = children[0].data.tags
    assert tags["epochline.model_digest"] == pipeline_run.data.tags["epochline.model_digest"]
    assert tags["epochline.train_key"] == pipeline_run.data.tags["epochline.train_key"]
    assert len({c.data.tags["epochline.model_digest"] for c in children}) == 3
    assert (project / "models/model.pt").read_bytes() == checkpoint  # train's output untouched

    lines = done.stdout.splitlines()
    assert lines[0] == (
        f"seeds: parent run '{parent.info.run_name}' ({parent.info.run_id}), 3 child runs"
    )
    accuracy = parent.data.metrics
    assert f"  accuracy                 {accuracy['test_accuracy_mean']:.4f} ± " in done.stdout
    assert lines[-1].startswith("  runs: `mlflow ui`, then http://127.0.0.1:5000/#/experiments/")


def _each_child_is_its_logged_model_scored(
    project: Path, children: list[mlflow.entities.Run]
) -> None:
    """Each child's model loads from the store; its test_ metrics are its answers' metrics
    on the test rows, and its epochs are logged as train logs them."""
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    test = pd.read_parquet(project / "data/split/test.parquet")
    y = test["label"].to_numpy()
    epochs = load_params(project / "params.yaml").train.epochs  # all run: no early stopping
    for child in children:
        answers = LoggedModel(child.data.tags["epochline.model_uri"]).score(test)
        values = metrics.classification_metrics(
            y, answers["probability"].to_numpy(), answers["label"].to_numpy()
        )
        assert {k: child.data.metrics[f"test_{k}"] for k in metrics.NAMES} == values
        history = store(project).get_metric_history(child.info.run_id, "val_loss")
        assert [m.step for m in history] == list(range(1, epochs + 1))
        assert child.data.tags["mlflow.note.content"].startswith("accuracy ")
