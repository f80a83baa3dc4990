"""Real tables nobody here made, end to end: the README's own-data steps on the Palmer
penguins and the Wisconsin breast cancer table, judged against scikit-learn yardsticks."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from devtools.servers import serving
from epochline.core.params import load_params
from epochline.data.schema import Schema
from epochline.data.splitting import TRAIN, assign, key_columns
from epochline.evaluation.baselines import yardsticks
from tests.conftest import REPO, copy_project, run, tool_env, trained_run
from tests.e2e.test_serving import post

pytestmark = pytest.mark.slow

# One test row of the smaller table is 1.5 points of accuracy: allow two.
TOLERANCE = 0.03


def own_data_project(tmp_path: Path, table: str) -> Path:
    """A fresh project set up as the README's "Your own data" says, for one example table."""
    project = copy_project(tmp_path / table, shrink=False)
    run(["python", "examples/write_table.py", table, f"data/external/{table}.csv"], project)
    shutil.copy(REPO / "examples" / table / "params.yaml", project / "params.yaml")
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", f"{table} as data.source"], project)
    return project


def _yardsticks(project: Path) -> dict[str, float]:
    params = load_params(project / "params.yaml")
    raw = pd.read_parquet(project / "data/raw.parquet")
    schema = Schema.from_dict(json.loads((project / "data/schema.json").read_text()))
    train = raw[assign(raw, key_columns(list(raw.columns), None), params.split) == TRAIN]
    test = pd.read_parquet(project / "data/split/test.parquet")
    found = yardsticks(train, test, schema, params.data.max_categories)
    return {y.name: y.accuracy for y in found}


@pytest.mark.parametrize("table", ["penguins", "breast-cancer"])
def test_real_table_runs_end_to_end_and_matches_the_yardstick(tmp_path: Path, table: str) -> None:
    project = own_data_project(tmp_path, table)
    out = run(["epochline", "repro"], project).stdout
    assert "test (" in out
    metrics = json.loads((project / "reports/metrics.json").read_text())
    found = _yardsticks(project)
    assert metrics["accuracy"] >= found["logistic regression"] - TOLERANCE, (metrics, found)
    assert metrics["accuracy"] > found["majority class"] + 0.2
    printed = run(["epochline", "baselines"], project).stdout
    assert "logistic regression" in printed and f"{metrics['accuracy']:.4f}" in printed
    assert run(["git", "status", "--porcelain", "--", "data", "models"], project).stdout == ""


def test_served_penguin_model_answers_json_with_a_null_and_an_unseen_category(
    tmp_path: Path,
) -> None:
    project = own_data_project(tmp_path, "penguins")
    run(["dvc", "repro"], project)
    model_uri = trained_run(project).data.tags["epochline.model_uri"]
    env = tool_env(MLFLOW_TRACKING_URI=f"sqlite:///{project / 'mlflow.db'}")
    args = ["mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local"]
    rows = [
        {"island": "Biscoe", "bill_length_mm": 39.1, "bill_depth_mm": 18.7,
         "flipper_length_mm": 181, "body_mass_g": 3750, "sex": "male", "year": "2007"},
        {"island": "Atlantis", "bill_length_mm": None, "bill_depth_mm": 15.0,
         "flipper_length_mm": 220, "body_mass_g": None, "sex": None, "year": "2031"},
    ]  # fmt: skip
    with serving([*args, "-h", "127.0.0.1", "-p"], project, env, "/ping") as base:
        answers = post(f"{base}/invocations", {"dataframe_records": rows})["predictions"]
    assert [a["class"] for a in answers] == ["yes", "no"]
    assert all(math.isfinite(a["probability"]) for a in answers)
    # Each input's kind is in the model's metadata (its signature takes any type: ints too).
    mlmodel = next(p for p in (project / "mlartifacts").rglob("MLmodel"))
    kinds = yaml.safe_load(mlmodel.read_text())["metadata"]["inputs"]
    assert kinds["island"] == kinds["sex"] == kinds["year"] == "category"
    assert kinds["bill_length_mm"] == "number"


def test_retrain_on_penguins_flags_a_batch_of_one_class_and_new_categories(
    tmp_path: Path,
) -> None:
    project = own_data_project(tmp_path, "penguins")
    run(["epochline", "retrain"], project)  # v1: the first champion
    table = pd.read_csv(project / "data/external/penguins.csv")
    batch = table[table["adelie"] == "no"].head(40).copy()
    batch["bill_length_mm"] = batch["bill_length_mm"] + 0.01  # new rows, not copies
    batch.loc[batch.index[:5], "island"] = "Atlantis"
    batch.to_csv(project / "data/incoming/batch-0001.csv", index=False)
    out = run(["epochline", "retrain"], project).stdout
    assert "ONE CLASS ONLY in batch-0001.csv ('no')" in out
    report = json.loads((project / "reports/retrain/report.json").read_text())
    island = next(f for f in report["drift"]["features"] if f["feature"] == "island")
    assert island["kind"] == "categorical" and island["new_categories"] == ["Atlantis"]
    assert report["drift"]["label"]["new_positive_rate"] == 0.0
    assert "one class only: 'no'" in (project / "reports/retrain/report.md").read_text()
    predicted = project / "predictions.csv"
    run(["epochline", "predict", "--input", "data/incoming/batch-0001.csv", "--output",
         str(predicted)], project)  # fmt: skip
    scored = pd.read_csv(predicted)
    assert set(scored["adelie_predicted"]) <= {"yes", "no"}
    assert np.isfinite(scored["adelie_probability"]).all()
