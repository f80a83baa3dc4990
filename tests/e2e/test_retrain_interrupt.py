"""A retrain killed (a real SIGKILL) after its decision is on record but before or between
the alias moves: the next retrain completes the promotion, so the aliases agree with the
record. Real DVC, a real SQLite store; the kill is the one thing added."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from tests.conftest import SMALL, copy_project, run, set_params, store
from tests.e2e.test_retrain import NAME, WEAK, alias, epochline, tags

pytestmark = pytest.mark.slow

# `epochline retrain`, which kills itself as it is about to move alias sys.argv[1].
KILLED_AT = """
import os, signal, sys
from mlflow.tracking import MlflowClient
move = MlflowClient.set_registered_model_alias
def killed_at(self, name, alias, version):
    if alias == sys.argv[1]:
        os.kill(os.getpid(), signal.SIGKILL)
    return move(self, name, alias, version)
MlflowClient.set_registered_model_alias = killed_at
from epochline.cli import app
app(["retrain"])
"""


def _retrain_killed_at(project: Path, alias_name: str) -> None:
    done = run([sys.executable, "-c", KILLED_AT, alias_name], project, check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr


def _aliases_agree_with_the_record(project: Path) -> None:
    """champion: the newest version on record as promoted (not rolled back); previous-champion:
    the version that it replaced."""
    found = store(project).search_model_versions(f"name = '{NAME}'")
    promoted = [v for v in found if v.tags.get("epochline.decision") == "promoted"
                and "epochline.rolled_back" not in v.tags]  # fmt: skip
    newest = max(promoted, key=lambda v: int(v.version))
    assert alias(project, "champion") == str(newest.version)
    assert alias(project, "previous-champion") == newest.tags.get("epochline.replaced_version")


def test_a_promotion_killed_before_or_between_its_alias_moves_is_completed_next_time(
    tmp_path: Path,
) -> None:
    # Before: v1's promotion, whose only move is champion. Between: v2's, killed after
    # previous-champion moved. (tests/code/test_registry.py repairs every such state.)
    project = copy_project(
        tmp_path / "project", {"retrain": {"min_metric": 0.0, "require_beats_baseline": False}}
    )
    set_params(project, {"train": WEAK})
    _retrain_killed_at(project, "champion")  # the first promotion: its only alias move
    assert tags(project, "1")["epochline.decision"] == "promoted"
    assert alias(project, "champion") is None
    again = epochline(project, "retrain")  # completes it; the same model: nothing new
    assert "completed the promotion of v1" in again.stderr and "UNCHANGED" in again.stdout
    _aliases_agree_with_the_record(project)

    set_params(project, {"train": SMALL["train"] | {"lr": 0.015}})  # clearly better
    _retrain_killed_at(project, "champion")
    assert tags(project, "2")["epochline.decision"] == "promoted"
    assert alias(project, "champion") == "1"
    done = epochline(project, "retrain")
    assert "completed the promotion of v2" in done.stderr, done.stderr
    assert alias(project, "champion") == "2" and alias(project, "previous-champion") == "1"
    _aliases_agree_with_the_record(project)
