"""The champion's history on the team stack: the alias moves on record on a registered model
of `mlflow server` (basic auth, PostgreSQL), by the MLflow user who made them, and
`epochline history` read back by a user who may only read."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from devtools.teamstack import Stack
from epochline.tracking.registry import Registry
from epochline.tracking.store import EXPERIMENT_KIND
from epochline.tracking.tags import ALIAS_MOVE_PREFIX, PROMOTED, Tag
from tests.team.conftest import client, team_project, team_run, user_env

pytestmark = [pytest.mark.slow, pytest.mark.team]

NAME, EXPERIMENT = "history-team", "history-team"
WHEN = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def _two_promotions(stack: Stack) -> None:
    """v1 champion, then v2 over it, as `trainer` (no training: versions of an empty run)."""
    as_trainer = client(stack, stack.trainer)
    experiment = as_trainer.create_experiment(EXPERIMENT, tags=dict([EXPERIMENT_KIND]))
    run_id = as_trainer.create_run(experiment).info.run_id
    registry = Registry(as_trainer, NAME)
    for n in (1, 2):
        registry.register(f"runs:/{run_id}/model-{n}", run_id, f"digest-{n}")
        registry.tag(str(n), {Tag.REASON: f"reason {n}", Tag.DECISION: PROMOTED})
    registry.promote("1", None)
    registry.promote("2", "1")


def test_moves_on_the_server_are_by_the_mlflow_user_and_readable_by_a_viewer(
    stack: Stack, tmp_path: Path
) -> None:
    _two_promotions(stack)
    project = team_project(
        tmp_path / "project",
        tracking={"experiment_name": EXPERIMENT, "registered_model_name": NAME},
    )
    # The credentials inside the URI, as some people set them: the move is still by trainer.
    host = stack.tracking_uri.removeprefix("http://")
    uri = f"http://{stack.trainer.username}:{stack.trainer.password}@{host}"
    back = team_run(["epochline", "rollback", "--reason", "broke prod"], project,
                    {"MLFLOW_TRACKING_URI": uri})  # fmt: skip
    assert "champion v2 -> v1" in back.stdout

    tags = client(stack).get_registered_model(NAME).tags  # as admin, from the server
    moves = [json.loads(v) for k, v in sorted(tags.items()) if k.startswith(ALIAS_MOVE_PREFIX)]
    assert [(m["kind"], m["from"], m["to"], m["by"], m["why"]) for m in moves] == [
        ("first", None, "1", stack.trainer.username, "reason 1"),
        ("promote", "1", "2", stack.trainer.username, "reason 2"),
        ("rollback", "2", "1", stack.trainer.username, "broke prod"),
    ]

    viewer = user_env(stack, stack.viewer)
    shown = team_run(["epochline", "history"], project, viewer).stdout.splitlines()
    assert shown[0].startswith(f"registered model {NAME}: champion v1, previous-champion none;")
    assert [re.sub(f"^{WHEN}", "T", line) for line in shown[1:]] == [
        f"T  first     champion none -> v1  by {stack.trainer.username}  why: reason 1",
        f"T  promote   champion v1 -> v2  by {stack.trainer.username}  why: reason 2",
        f"T  rollback  champion v2 -> v1  by {stack.trainer.username}  why: broke prod",
    ]
    at = team_run(["epochline", "history", "--at", moves[1]["when"]], project, viewer)
    assert at.stdout.startswith(f"at {moves[1]['when']}: champion was v2 (since ")
