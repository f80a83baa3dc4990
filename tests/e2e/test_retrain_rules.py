"""Retrain's refusals end to end: what evaluate found about the model it just evaluated
(reports/verdict.json: below the logistic regression, a class never predicted) keeps it from
being champion, the first one too, and the summary says why. Real DVC, real MLflow registry,
temp git repo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import copy_project, set_params, trained_run
from tests.e2e.test_retrain import WEAK, alias, epochline, tags, versions

pytestmark = pytest.mark.slow

FLOOR = "passes the floor retrain.min_metric = 0.0"
WARNING = "WARNING: below the logistic regression yardstick: accuracy "


def test_a_first_model_below_the_logistic_regression_is_not_champion(tmp_path: Path) -> None:
    # A floor of 0: only the yardstick stands between this untrained model and champion.
    project = copy_project(tmp_path / "project", {"retrain": {"min_metric": 0.0}})
    set_params(project, {"train": WEAK})

    kept = epochline(project, "retrain")

    assert "retrain: KEPT challenger v1" in kept.stdout, kept.stdout
    report = json.loads((project / "reports/retrain/report.json").read_text())
    reason = report["comparison"]["reason"]
    assert reason.startswith("refused: below the logistic regression yardstick: accuracy ")
    assert "(retrain.baseline_margin); no champion yet; accuracy " in reason
    assert reason.endswith(FLOOR)
    assert report["verdict"]["below_baseline"] is not None
    assert f"  reason: {reason}\n" in kept.stdout
    assert f"\n  {WARNING}" in kept.stdout  # evaluate's warning, under the test scores
    assert alias(project, "champion") is None and versions(project) == ["1"]
    assert tags(project, "1")["epochline.decision"] == "kept"

    # With the rule off, the next model (the same one, a hair apart) goes by the floor alone.
    set_params(project, {"retrain": {"require_beats_baseline": False},
                         "train": {"lr": 0.00011}})  # fmt: skip
    promoted = epochline(project, "retrain")
    assert "retrain: PROMOTED challenger v2" in promoted.stdout, promoted.stdout
    assert "  reason: no champion yet; accuracy " in promoted.stdout
    assert f" {FLOOR}\n" in promoted.stdout
    assert f"\n  {WARNING}" in promoted.stdout  # still said, no longer a refusal
    assert alias(project, "champion") == "2"


def test_a_model_that_never_predicts_the_positive_class_is_flagged_everywhere_and_refused(
    tmp_path: Path,
) -> None:
    # One epoch and a cut no probability reaches: every test row is answered 0.
    project = copy_project(
        tmp_path / "project",
        {"train": {"epochs": 1}, "evaluate": {"threshold": 0.999},
         "retrain": {"min_metric": 0.0, "require_beats_baseline": False}},
    )  # fmt: skip
    repro = epochline(project, "repro")
    line = "WARNING: the model never predicts '1' on the test rows; try evaluate.threshold: max_f1"
    assert f"\n  {line}" in repro.stdout, repro.stdout
    verdict = json.loads((project / "reports/verdict.json").read_text())
    assert verdict["never_predicts"] == "1" and verdict["warnings"][0].startswith(line)
    metrics = json.loads((project / "reports/metrics.json").read_text())
    assert metrics["predicted_positive_rate"] == 0.0 and metrics["recall"] == 0.0
    assert trained_run(project).data.tags["epochline.never_predicts"] == "1"

    kept = epochline(project, "retrain")
    assert "retrain: KEPT challenger v1" in kept.stdout, kept.stdout
    assert "refused: never predicts '1' on the test rows" in kept.stdout
    assert alias(project, "champion") is None
