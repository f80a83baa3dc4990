"""Real tables nobody here made, end to end: the README's own-data steps with only the data
keys set (examples/<table>/params.yaml), then `epochline repro` and `epochline baselines`,
the network judged against the yardsticks fitted on the same rows.

Here the tables with both classes common; test_real_tables_rare.py has those with 3-12 %
positives. Each table's project is made once per module and shared by its tests, which only
read it. The README's table of results is these runs' rows, checked word for word.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from bench.project import set_params
from devtools.servers import serving
from epochline.core import paths
from epochline.evaluation.baselines import BOOSTED, COLUMNS, LOGISTIC, MAJORITY
from tests.conftest import REPO, copy_project, run, tool_env, trained_run
from tests.e2e.test_serving import post

pytestmark = pytest.mark.slow

# The target: the network at most a point below the logistic regression.
MARGIN = 0.01
NETWORK = "epochline network"  # its row in `epochline baselines`
# The README's results table: one row per run below, as readme_row writes it.
README_HEAD = (
    "| table (test rows) | positives | majority class | logistic regression "
    "| gradient boosting | epochline network | threshold | network recall |\n"
    "|---|---|---|---|---|---|---|---|"
)


@dataclass(frozen=True)
class Table:
    """One run of an example table: what the README calls it and what the test expects."""

    name: str  # examples/<name>/params.yaml, examples/write_table.py <name>
    title: str  # the README row's first cell
    rare: bool = False  # few positives: PR AUC beside accuracy and ROC AUC
    params: dict[str, Any] = field(default_factory=dict)  # set after the example's, if any
    never_predicts: str | None = None  # the class the network gives no test row, if one


@dataclass(frozen=True)
class Ran:
    """A table's project after `epochline repro` and `epochline baselines`."""

    project: Path
    summary: str  # what `epochline repro` printed
    printed: str  # what `epochline baselines` printed
    metrics: dict[str, Any]  # metrics.json and verdict.json: evaluated(project)


TABLES = {
    t.name: t
    for t in (
        Table("penguins", "penguins: Adelie or not"),
        Table("breast-cancer", "breast cancer: malignant"),
        Table("titanic", "titanic: survived"),
    )
}


def own_data_project(tmp_path: Path, table: str, params: dict[str, Any] | None = None) -> Path:
    """A fresh project set up as the README's "Your own data" says, for one example table;
    `params` are the edits a user makes after copying the example's params.yaml."""
    project = copy_project(tmp_path / table, shrink=False)
    run(["python", "examples/write_table.py", table, f"data/external/{table}.csv"], project)
    shutil.copy(REPO / "examples" / table / "params.yaml", project / "params.yaml")
    if params:
        set_params(project, params)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", f"{table} as data.source"], project)
    return project


def run_table(folder: Path, table: Table) -> Ran:
    project = own_data_project(folder, table.name, table.params)
    summary = run(["epochline", "repro"], project).stdout
    printed = run(["epochline", "baselines"], project).stdout
    return Ran(project, summary, printed, evaluated(project))


def evaluated(project: Path) -> dict[str, Any]:
    """The network's test metrics, with the yardsticks' and the warnings evaluate writes
    beside them (`baselines`, `never_predicts`, `warnings`)."""
    found = json.loads((project / paths.METRICS).read_text())
    return found | json.loads((project / paths.VERDICT).read_text())


def runs_once(folder: Path, tables: dict[str, Table]) -> Callable[[str], Ran]:
    """Each table run the first time a test asks for it, then shared."""
    done: dict[str, Ran] = {}

    def get(key: str) -> Ran:
        if key not in done:
            done[key] = run_table(folder / key, tables[key])
        return done[key]

    return get


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Ran]:
    return runs_once(tmp_path_factory.mktemp("tables"), TABLES)


def printed_rows(printed: str) -> tuple[int, dict[str, dict[str, float]]]:
    """`epochline baselines`'s markdown table: its test rows, and each model's numbers by
    column (`roc_auc`, ..., `threshold`; NaN for '-')."""
    lines = [line for line in printed.splitlines() if line.startswith("| ")]
    head, *rows = ([c.strip() for c in line.strip("| ").split(" | ")] for line in lines)
    n_test = int(head[0].removeprefix("model (test rows: ").removesuffix(")"))
    columns = [c.replace(" ", "_") for c in head[1:]]
    numbers = {
        name: {c: math.nan if v == "-" else float(v) for c, v in zip(columns, cells, strict=True)}
        for name, *cells in rows
    }
    return n_test, numbers


def n_test_rows(metrics: dict[str, Any]) -> int:
    return int(np.sum(metrics["confusion_matrix"]))


def readme_row(table: Table, metrics: dict[str, Any], boosted: dict[str, float]) -> str:
    """The README's row for one run: every model's test accuracy / ROC AUC (/ PR AUC for
    rare positives), from evaluate's reports and the boosted model's printed row."""
    keys = ("accuracy", "roc_auc", "pr_auc") if table.rare else ("accuracy", "roc_auc")

    def cell(values: dict[str, float]) -> str:
        return " / ".join(f"{values[k]:.4f}" for k in keys)

    yardsticks = metrics["baselines"]
    cells = [
        f"{table.title} ({n_test_rows(metrics)})",
        f"{metrics['positive_rate']:.1%}",
        cell(yardsticks["majority_class"]),
        cell(yardsticks["logistic_regression"]),
        cell(boosted),
        cell(metrics),
        f"{metrics['threshold']:.4f}",
        f"{metrics['recall']:.4f}",
    ]
    return f"| {' | '.join(cells)} |"


# The checks every table's run gets, shared with test_real_tables_rare.py.


def check_summary_and_workspace(table: Table, done: Ran) -> None:
    """`epochline repro` summarised the run with evaluate's warnings; `epochline baselines`
    wrote nothing tracked."""
    assert f"test ({n_test_rows(done.metrics)} rows): accuracy " in done.summary, done.summary
    assert all(f"  {line}\n" in done.summary for line in done.metrics["warnings"]), done.summary
    assert done.metrics["never_predicts"] == table.never_predicts, done.metrics["warnings"]
    status = run(["git", "status", "--porcelain", "--", "data", "models"], done.project).stdout
    assert status == ""


def check_within_a_point_of_the_logistic_regression(done: Ran) -> None:
    network, lr = done.metrics, done.metrics["baselines"]["logistic_regression"]
    info = json.loads((done.project / "models/model.json").read_text())
    seen = {k: (network[k], lr[k]) for k in ("roc_auc", "accuracy")} | {
        k: info[k] for k in ("best_epoch", "epochs_trained")
    }  # what a failure needs to be judged: network, yardstick, and how training ended
    assert network["roc_auc"] >= lr["roc_auc"] - MARGIN, seen
    assert network["accuracy"] >= lr["accuracy"] - MARGIN, seen


def check_printed_matches_metrics(done: Ran) -> None:
    """`epochline baselines` prints, to its four decimals, what evaluate wrote: the same
    yardsticks on the same rows (verdict.json), and the network's test metrics."""
    n_test, printed = printed_rows(done.printed)
    assert n_test == n_test_rows(done.metrics)
    assert list(printed) == [MAJORITY, LOGISTIC, BOOSTED, NETWORK]
    yardsticks = done.metrics["baselines"]
    wrote = {name: yardsticks[name.replace(" ", "_")] for name in (MAJORITY, LOGISTIC)}
    wrote[NETWORK] = done.metrics
    for name, values in wrote.items():
        for column in COLUMNS:
            assert printed[name][column] == pytest.approx(values[column], abs=5.1e-5), name
    assert printed[NETWORK]["threshold"] == pytest.approx(done.metrics["threshold"], abs=5.1e-5)
    assert all(math.isfinite(printed[BOOSTED][c]) for c in COLUMNS)


def check_readme_row(table: Table, done: Ran) -> None:
    readme = (REPO / "README.md").read_text()
    row = readme_row(table, done.metrics, printed_rows(done.printed)[1][BOOSTED])
    assert README_HEAD in readme and f"\n{row}\n" in readme, (
        "README.md's results table lacks this run's row; as the run gives it:\n"
        f"{README_HEAD}\n{row}"
    )


@pytest.mark.parametrize("name", TABLES)
def test_repro_summarises_and_leaves_nothing_tracked_changed(
    ran: Callable[[str], Ran], name: str
) -> None:
    check_summary_and_workspace(TABLES[name], ran(name))


@pytest.mark.parametrize("name", TABLES)
def test_network_within_a_point_of_the_logistic_regression(
    ran: Callable[[str], Ran], name: str
) -> None:
    check_within_a_point_of_the_logistic_regression(ran(name))


@pytest.mark.parametrize("name", TABLES)
def test_network_well_above_the_majority_class(ran: Callable[[str], Ran], name: str) -> None:
    metrics = ran(name).metrics
    majority = metrics["baselines"]["majority_class"]
    assert metrics["accuracy"] > majority["accuracy"] + 0.1, (metrics, majority)
    assert metrics["balanced_accuracy"] > 0.7


@pytest.mark.parametrize("name", TABLES)
def test_printed_baselines_match_what_evaluate_wrote(ran: Callable[[str], Ran], name: str) -> None:
    check_printed_matches_metrics(ran(name))


@pytest.mark.parametrize("name", TABLES)
def test_readme_has_the_run_row_for_row(ran: Callable[[str], Ran], name: str) -> None:
    check_readme_row(TABLES[name], ran(name))


def test_served_penguin_model_answers_json_with_a_null_and_an_unseen_category(
    ran: Callable[[str], Ran],
) -> None:
    project = ran("penguins").project
    model_uri = trained_run(project).data.tags["epochline.model_uri"]
    env = tool_env(MLFLOW_TRACKING_URI=f"sqlite:///{project / 'mlflow.db'}")
    args = ["mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local"]
    rows = [
        {"island": "Biscoe", "bill_length_mm": 39.1, "bill_depth_mm": 18.7,
         "flipper_length_mm": 181, "body_mass_g": 3750, "sex": "male", "year": "2007"},
        {"island": "Atlantis", "bill_length_mm": 47.5, "bill_depth_mm": 15.0,
         "flipper_length_mm": 220, "body_mass_g": 5200, "sex": None, "year": "2031"},
        {"island": "Atlantis", "bill_length_mm": None, "bill_depth_mm": 15.0,
         "flipper_length_mm": 220, "body_mass_g": None, "sex": None, "year": "2031"},
    ]  # fmt: skip
    with serving([*args, "-h", "127.0.0.1", "-p"], project, env, "/ping") as base:
        answers = post(f"{base}/invocations", {"dataframe_records": rows})["predictions"]
    # An Adelie; a Gentoo's measurements with a null and unseen categories; and gaps in
    # numbers, which only the one training row with gaps (an Adelie) speaks for: answered.
    assert [a["class"] for a in answers[:2]] == ["yes", "no"]
    assert answers[2]["class"] in {"yes", "no"}
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
