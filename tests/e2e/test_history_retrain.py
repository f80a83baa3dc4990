"""The champion's history after the real loop: `epochline retrain` twice, `epochline rollback`,
then `epochline history [--at T]`, in a temp DVC project with a real SQLite MLflow store."""

from __future__ import annotations

import json
import re
import signal
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import SMALL, copy_project, run, set_params
from tests.e2e.test_retrain_interrupt import KILLED_AT

pytestmark = pytest.mark.slow

NAME = "epochline-classifier"
EPOCHLINE = str(Path(sys.executable).parent / "epochline")
WEAK = {"epochs": 1, "lr": 0.0001}
WHEN = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def epochline(project: Path, *args: str, **env: str) -> str:
    return run([EPOCHLINE, *args], project, **env).stdout


def move_tags(project: Path) -> list[dict[str, str | None]]:
    """The alias moves as the store holds them: the registered model's tags, in order."""
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    tags = client.get_registered_model(NAME).tags
    return [json.loads(v) for k, v in sorted(tags.items()) if k.startswith("epochline.alias_move.")]


def test_history_shows_v1_then_v2_then_the_rollback_to_v1_with_reasons(tmp_path: Path) -> None:
    # A floor of 0, and no yardstick to beat, let a weak first model be champion, so that a
    # better one has something to beat (as tests/e2e/test_retrain.py does).
    weak_champion = {"retrain": {"min_metric": 0.0, "require_beats_baseline": False}}
    project = copy_project(tmp_path / "project", weak_champion)
    set_params(project, {"train": WEAK})
    assert "PROMOTED challenger v1" in epochline(project, "retrain")
    set_params(project, {"train": SMALL["train"] | {"lr": 0.015}})
    assert "PROMOTED challenger v2" in epochline(project, "retrain")
    # By whom: the OS user here (no MLflow user), as a scheduler's account would be.
    epochline(project, "rollback", "--reason", "bad predictions in prod", LOGNAME="oncall")

    moves = move_tags(project)
    assert [(m["kind"], m["from"], m["to"]) for m in moves] == [
        ("first", None, "1"),
        ("promote", "1", "2"),
        ("rollback", "2", "1"),
    ]
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    reasons = [client.get_model_version(NAME, v).tags["epochline.reason"] for v in ("1", "2")]
    assert [m["why"] for m in moves] == [*reasons, "bad predictions in prod"]
    assert reasons[0].startswith("no champion yet") and reasons[1].startswith("better")
    assert moves[2]["by"] == "oncall"

    header, *lines = epochline(project, "history").splitlines()
    assert header == (
        f"registered model {NAME}: champion v1, previous-champion none; "
        "3 alias moves on record (tags epochline.alias_move.*)"
    )
    assert [re.sub(f"^{WHEN}", "T", line) for line in lines] == [
        f"T  first     champion none -> v1  by {moves[0]['by']}  why: {reasons[0]}",
        f"T  promote   champion v1 -> v2  by {moves[1]['by']}  why: {reasons[1]}",
        "T  rollback  champion v2 -> v1  by oncall  why: bad predictions in prod",
    ]

    # The second of the promotion: v2 was champion (until the rollback); long before: none.
    at_v2 = epochline(project, "history", "--at", str(moves[1]["when"])).strip()
    assert at_v2 == (
        f"at {moves[1]['when']}: champion was v2 (since {moves[1]['when']}, "
        f"promote by {moves[1]['by']}: {reasons[1]})"
    )
    before = epochline(project, "history", "--at", "2000-01-01").strip()
    assert before == (
        f"at 2000-01-01T00:00:00Z: no champion yet (the first promotion was at {moves[0]['when']})"
    )


def test_a_promotion_killed_before_its_alias_moves_is_on_record_once(tmp_path: Path) -> None:
    """A real SIGKILL as the first promotion moves its alias: its move was on record before;
    the next retrain completes the promotion without recording it again."""
    project = copy_project(tmp_path / "project", {"retrain": {"require_beats_baseline": False}})
    killed = run([sys.executable, "-c", KILLED_AT, "champion"], project, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert [(m["kind"], m["from"], m["to"]) for m in move_tags(project)] == [("first", None, "1")]

    again = run([EPOCHLINE, "retrain"], project)
    assert "completed the promotion of v1" in again.stderr
    assert [(m["kind"], m["from"], m["to"]) for m in move_tags(project)] == [("first", None, "1")]
    assert epochline(project, "history").startswith(
        f"registered model {NAME}: champion v1, previous-champion none; 1 alias move on record"
    )
