"""`epochline compare A B` on a real project: two commits with another train.lr, compared by
branch names, run ids, registered versions and a DVC experiment's name; the report's numbers
checked against the store and against the two models scored again here."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.entities import Run

from epochline.core.params import RetrainParams
from epochline.evaluation.metrics import NAMES
from epochline.retrain.compare import Scores, decide, paired_differences
from epochline.serving.scoring import LoggedModel
from tests.conftest import (
    commit,
    copy_project,
    run,
    set_params,
    store,
    trained_run,
    workspace_restored,
)

pytestmark = pytest.mark.slow
LR_A, LR_B = 0.003, 0.01


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Run, Run]:
    """Branch main with the pipeline run and its dvc.lock committed; branch feature, one
    commit later, with another train.lr. Both runs in the project's SQLite store."""
    project = copy_project(tmp_path_factory.mktemp("compare") / "project")
    run(["git", "branch", "-M", "main"], project)
    run(["epochline", "repro"], project)
    commit(project, "pipeline on main")
    a = trained_run(project)
    run(["git", "checkout", "-q", "-b", "feature"], project)
    set_params(project, {"train": {"lr": LR_B}})
    run(["epochline", "repro"], project)
    commit(project, "train.lr 0.01")
    return project, a, trained_run(project)


def _compare(project: Path, *args: str, check: bool = True, **env: str) -> Any:
    return run(["epochline", "compare", *args], project, check=check, **env)


def _report(project: Path, *targets: str) -> dict[str, Any]:
    _compare(project, *targets, "--format", "json")
    report: dict[str, Any] = json.loads((project / "reports/compare/report.json").read_text())
    return report


def _scores(project: Path, model_uri: str) -> tuple[np.ndarray, Scores]:
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")  # conftest puts it back
    test = pd.read_parquet(project / "data/split/test.parquet")
    return test["label"].to_numpy(), Scores.of(LoggedModel(model_uri).score(test))


def test_main_against_head_says_what_the_store_holds(project: tuple[Path, Run, Run]) -> None:
    path, a, b = project
    report = _report(path, "main", "HEAD")

    assert (report["a"]["run_id"], report["b"]["run_id"]) == (a.info.run_id, b.info.run_id)
    for side, run_ in (("a", a), ("b", b)):
        logged = store(path).get_run(run_.info.run_id).data.metrics
        assert report[side]["metrics"] == {m: logged[f"test_{m}"] for m in NAMES}
    assert report["differences"]["params"] == [{"key": "train.lr", "a": str(LR_A), "b": str(LR_B)}]
    assert report["differences"]["data_digest"]["a"] == report["differences"]["data_digest"]["b"]
    rows = {r["name"]: r for r in report["metrics"]}
    assert rows["accuracy"]["difference"] == pytest.approx(
        report["b"]["metrics"]["accuracy"] - report["a"]["metrics"]["accuracy"]
    )
    for name in ("positive_rate", "predicted_positive_rate"):
        assert rows[name]["ci_low"] is None  # no interval: not a skill
    assert rows["log_loss"]["lower_is_better"] is True
    for plot in report["plots"]:
        assert (path / "reports/compare" / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert run(["git", "status", "--porcelain"], path).stdout == ""  # reports/compare: ignored


def test_intervals_and_verdict_are_retrains_on_the_models_scored_again(
    project: tuple[Path, Run, Run],
) -> None:
    path, a, b = project
    report = _report(path, "main", "HEAD")
    y, scores_a = _scores(path, a.data.tags["epochline.model_uri"])
    _, scores_b = _scores(path, b.data.tags["epochline.model_uri"])
    rule = RetrainParams()

    assert report["shared_rows"] == {"n": len(y), "reason": None}
    for row in report["metrics"]:
        if row["ci_low"] is None:
            continue
        gains = paired_differences(
            y, scores_b, scores_a, rule.model_copy(update={"metric": row["name"]})
        )
        diffs = -gains if row["lower_is_better"] else gains
        low, high = np.quantile(diffs, [0.025, 0.975])
        assert (row["ci_low"], row["ci_high"]) == (pytest.approx(low), pytest.approx(high))
        assert low <= row["difference"] <= high or row["name"] in ("roc_auc", "pr_auc")
    judged = decide(y, scores_b, scores_a, rule)
    assert report["verdict"]["decision"] == judged.decision
    assert report["verdict"]["line"].endswith(judged.reason)


def test_markdown_and_html_hold_the_same_numbers(project: tuple[Path, Run, Run]) -> None:
    path, _, _ = project
    report = _report(path, "main", "HEAD")
    done = _compare(path, "main", "HEAD")
    md = (path / "reports/compare/report.md").read_text()
    _compare(path, "main", "HEAD", "--format", "html")
    page = (path / "reports/compare/report.html").read_text()

    assert done.stdout.splitlines() == [
        "compare: reports/compare/report.md",
        report["verdict"]["line"],
    ]
    accuracy = next(r for r in report["metrics"] if r["name"] == "accuracy")
    line = (
        f"| accuracy | {accuracy['a']:.4f} | {accuracy['b']:.4f} | {accuracy['difference']:+.4f} |"
    )
    assert line in md
    assert "| `train.lr` | 0.003 | 0.01 |" in md and "![loss and accuracy" in md
    assert "<table>" in page and page.count('src="data:image/png;base64,') == 2


def test_run_ids_registered_versions_and_an_experiment_name_name_the_same_runs(
    project: tuple[Path, Run, Run],
) -> None:
    path, a, b = project
    client = store(path)
    # MLflow's registry finds a logged model through the global URI (conftest puts it back).
    mlflow.set_tracking_uri(f"sqlite:///{path / 'mlflow.db'}")
    name = "compare-test-model"
    client.create_registered_model(name)
    for run_ in (a, b):
        client.create_model_version(name, run_.data.tags["epochline.model_uri"], run_.info.run_id)
    client.set_registered_model_alias(name, "champion", "1")
    try:
        report = _report(path, a.info.run_id, f"models:/{name}/2")
        assert (report["a"]["run_id"], report["b"]["run_id"]) == (a.info.run_id, b.info.run_id)
        report = _report(path, f"models:/{name}@champion", f"runs:/{b.info.run_id}")
        assert (report["a"]["run_id"], report["b"]["run_id"]) == (a.info.run_id, b.info.run_id)
    finally:
        client.delete_registered_model(name)

    with workspace_restored(path):
        run(["dvc", "exp", "run", "-n", "lr-high", "-S", "train.lr=0.05"], path)
        report = _report(path, "main", "lr-high")
    assert report["b"]["how"].startswith("DVC experiment")
    exp_run = client.get_run(report["b"]["run_id"])
    assert exp_run.data.params["train.lr"] == "0.05"
    assert report["differences"]["params"] == [{"key": "train.lr", "a": str(LR_A), "b": "0.05"}]


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("no-such-thing", "is none of: a run id"),
        (
            "0123456789abcdef0123456789abcdef",
            "run 0123456789abcdef0123456789abcdef: not in this store",
        ),
        ("models:/nobody/1", "models:/nobody/1: no such registered version"),
    ],
)
def test_a_target_that_does_not_exist_exits_2_with_one_line(
    project: tuple[Path, Run, Run], target: str, says: str
) -> None:
    path, _, _ = project
    done = _compare(path, "main", target, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and says in done.stderr and "Traceback" not in done.stderr


def test_a_revision_whose_model_this_store_never_saw_exits_2(
    project: tuple[Path, Run, Run], tmp_path: Path
) -> None:
    path, _, _ = project
    other = f"sqlite:///{tmp_path / 'other.db'}"
    done = _compare(path, "main", "HEAD", check=False, MLFLOW_TRACKING_URI=other)
    assert done.returncode == 2
    # The last line: MLflow logs its creation of the new store's tables before it.
    last = done.stderr.splitlines()[-1]
    assert re.fullmatch(
        r"error: compare: main \(git \w{12}\): no run in .* holds its model \w{12}; .*", last
    )
    assert "Traceback" not in done.stderr


def test_runs_held_out_on_other_rows_are_shown_but_not_judged(
    project: tuple[Path, Run, Run],
) -> None:
    path, _, _ = project
    params = (path / "params.yaml").read_text()
    try:
        params_now = yaml.safe_load(params)
        params_now["split"]["seed"] = 7
        (path / "params.yaml").write_text(yaml.safe_dump(params_now))
        report = _report(path, "main", "HEAD")
    finally:
        (path / "params.yaml").write_text(params)
    assert report["shared_rows"]["n"] == 0
    assert "split.seed 42 -> 7" in report["shared_rows"]["reason"]
    assert report["verdict"]["decision"] == "not judged"
    assert all(r["ci_low"] is None for r in report["metrics"])
    assert report["a"]["metrics"]["accuracy"] > 0  # the logged metrics are still there


def _seeds_parent(project: Path) -> str:
    done = run(["epochline", "seeds", "2"], project)
    found = re.search(r"parent run '.*' \(([0-9a-f]{32})\)", done.stdout)
    assert found, done.stdout
    return found[1]


def test_two_seed_spreads_are_compared_as_spreads(project: tuple[Path, Run, Run]) -> None:
    path, _, _ = project
    b = _seeds_parent(path)  # train.lr 0.01, the branch's params
    with workspace_restored(path):
        run(["git", "checkout", "main", "--", "params.yaml"], path)
        a = _seeds_parent(path)
    run(["git", "reset", "-q", "params.yaml"], path)  # workspace_restored put the file back
    report = _report(path, a, b)

    client = store(path)
    for side, parent in (("a", a), ("b", b)):
        children = client.search_runs(["1"], f"tags.`mlflow.parentRunId` = '{parent}'")
        accuracy = [c.data.metrics["test_accuracy"] for c in children]
        assert len(accuracy) == 2
        spread = report[side]["spread"]["accuracy"]
        assert (spread["min"], spread["max"]) == (min(accuracy), max(accuracy))
        assert report[side]["metrics"]["accuracy"] == pytest.approx(np.mean(accuracy))
        assert spread["std"] == pytest.approx(np.std(accuracy, ddof=1))
    ra, rb = report["a"]["spread"]["accuracy"], report["b"]["spread"]["accuracy"]
    inside = abs(rb["mean"] - ra["mean"]) <= max(ra["std"], rb["std"])
    row = next(r for r in report["metrics"] if r["name"] == "accuracy")
    assert row["within_seed_spread"] is inside
    if inside:  # retrain.metric is accuracy: a difference the seeds alone make is not acted on
        assert report["verdict"]["decision"] == "kept"
        assert "inside the seed spread on accuracy" in report["verdict"]["line"]
