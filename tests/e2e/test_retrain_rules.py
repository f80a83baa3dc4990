"""Retrain's refusals end to end: what evaluate found about the model it just evaluated
(reports/verdict.json: below the logistic regression, a class never predicted) keeps it from
being champion, the first one too, and the summary says why. Real DVC, real MLflow registry,
temp git repo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import copy_project, set_params
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
