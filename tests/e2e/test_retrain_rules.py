"""Retrain's refusals end to end: what evaluate found about the model it just evaluated (below
the logistic regression, a class never predicted) keeps it from being champion, the first
one too, and the summary says why. Real DVC, real MLflow registry, temp git repo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import copy_project, set_params
from tests.e2e.test_retrain import WEAK, alias, epochline, tags, versions

pytestmark = pytest.mark.slow


def test_a_first_model_below_the_logistic_regression_is_not_champion(tmp_path: Path) -> None:
    # A floor of 0: only the yardstick stands between this untrained model and champion.
    project = copy_project(tmp_path / "project", {"retrain": {"min_metric": 0.0}})
    set_params(project, {"train": WEAK})

    kept = epochline(project, "retrain")

    assert "retrain: KEPT challenger v1" in kept.stdout, kept.stdout
    reason = json.loads((project / "reports/retrain/report.json").read_text())["comparison"][
        "reason"
    ]
    assert reason.startswith("refused: "), reason
    assert "below the logistic regression yardstick: accuracy " in reason
    assert reason.endswith("no champion yet; accuracy " + reason.split("accuracy ")[-1])
    assert f"  reason: {reason}\n" in kept.stdout
    # evaluate's warning, printed under the test scores.
    assert "\n  WARNING: below the logistic regression yardstick: accuracy " in kept.stdout
    assert alias(project, "champion") is None and versions(project) == ["1"]
    assert tags(project, "1")["epochline.decision"] == "kept"
