"""deploy/github/pr-report.sh end to end, as the pull-request workflow runs it.

A project with two branches, each a pipeline run with its dvc.lock committed: `main`, and
`feature` with another train.lr. Both are pushed to a bare "origin" and their outputs to a
DVC remote (a folder); the project's store plays the team's MLflow server. Each test runs
the script in a fresh clone checked out at `feature` (what actions/checkout gives a
runner), then holds the comment and report.json to the runs in the store.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from bench.project import set_params
from tests.conftest import copy_project, run

pytestmark = pytest.mark.slow

SCRIPT = "deploy/github/pr-report.sh"
OUT = Path("reports/compare")
MARKER = "<!-- epochline-pr-report -->"
PNG = b"\x89PNG\r\n\x1a\n"
LR = {"main": 0.003, "feature": 0.01}
FALLBACK = "is not in this store: building it in a worktree"


def _commit_run(project: Path, message: str) -> dict[str, str]:
    """`epochline repro`, its dvc.lock and reports committed, outputs pushed; model.json."""
    run(["epochline", "repro"], project)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", message], project)
    run(["dvc", "push"], project)
    info: dict[str, str] = json.loads((project / "models/model.json").read_text())
    return info


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("pr-report")
    project = copy_project(root / "project", {"train": {"lr": LR["main"]}})
    remote = root / "dvc-remote"
    run(["dvc", "remote", "add", "--local", "-d", "team", str(remote)], project)
    models = {"main": _commit_run(project, "main: pipeline run")}
    run(["git", "checkout", "-qb", "feature"], project)
    set_params(project, {"train": {"lr": LR["feature"]}})
    models["feature"] = _commit_run(project, "feature: another learning rate")
    run(["git", "init", "-q", "--bare", str(root / "origin.git")], root)
    run(["git", "remote", "add", "origin", str(root / "origin.git")], project)
    run(["git", "push", "-q", "origin", "main", "feature"], project)
    return {"root": root, "remote": remote, "models": models,
            "store": f"sqlite:///{project / 'mlflow.db'}"}  # fmt: skip


def _clone(origin: dict[str, Any], name: str) -> Path:
    """A fresh clone at `feature` whose DVC remote is the team's (a runner's checkout)."""
    clone = origin["root"] / name
    run(["git", "clone", "-q", "-b", "feature", str(origin["root"] / "origin.git"), str(clone)],
        origin["root"])  # fmt: skip
    run(["dvc", "remote", "add", "--local", "-d", "team", str(origin["remote"])], clone)
    return clone


def _report(clone: Path, store: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The script as the workflow runs it; outside Actions unless `env` says otherwise."""
    env = {"GITHUB_BASE_REF": "main", "GITHUB_RUN_ID": "", "MLFLOW_TRACKING_URI": store} | env
    done = run(["bash", SCRIPT], clone, check=False, **env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"pr-report: the comment is {OUT}/comment.md" in done.stdout
    return done


def _run_of(store: str, model: dict[str, str]) -> Run:
    """The one run in `store` that trained `model` (models/model.json), found by its tags."""
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("epochline")
    assert experiment is not None, f"no experiment 'epochline' in {store}"
    found = [
        r
        for r in client.search_runs([experiment.experiment_id])
        if r.data.tags.get("epochline.model_digest") == model["model_digest"]
        and r.data.tags.get("epochline.train_key") == model["train_key"]
        and "epochline.model_uri" in r.data.tags
    ]
    assert len(found) == 1, f"{len(found)} runs hold model {model['model_digest']}"
    return found[0]


def _check_side(side: dict[str, Any], expected: Run, target: str) -> None:
    assert side["target"] == target
    assert side["run_id"] == expected.info.run_id
    assert side["model_uri"] == expected.data.tags["epochline.model_uri"]
    logged = expected.data.metrics
    assert side["metrics"], side
    assert side["metrics"] == {k: logged[f"test_{k}"] for k in side["metrics"]}


def _check_report(
    clone: Path, store: str, models: dict[str, dict[str, str]], plots: str = f"{OUT}/"
) -> dict[str, Any]:
    """report.json names main's and feature's runs in `store`, with their logged numbers;
    the comment holds the same numbers and says where the plots are; they are PNGs."""
    report: dict[str, Any] = json.loads((clone / OUT / "report.json").read_text())
    _check_side(report["a"], _run_of(store, models["main"]), "origin/main")
    _check_side(report["b"], _run_of(store, models["feature"]), "HEAD")
    assert {"key": "train.lr", "a": str(LR["main"]), "b": str(LR["feature"])} in report[
        "differences"
    ]["params"]
    comment = (clone / OUT / "comment.md").read_text()
    assert comment.splitlines()[0] == MARKER
    assert "| metric | A | B | B - A |" in comment
    assert report["verdict"]["line"] in comment
    for row in report["metrics"]:
        assert row["a"] == report["a"]["metrics"][row["name"]]
        assert row["b"] == report["b"]["metrics"][row["name"]]
        assert row["difference"] == pytest.approx(row["b"] - row["a"])
        assert f"| {row['name']} | {row['a']:.4f} | {row['b']:.4f} |" in comment
    assert any(row["a"] != row["b"] for row in report["metrics"])
    assert "](curves.png)" not in comment  # a local image would be broken in a comment
    assert f"Plots (curves.png, roc.png): {plots}. A comment cannot show" in comment
    for name in report["plots"]:
        assert (clone / OUT / name).read_bytes().startswith(PNG)
    return report


def _worktrees(clone: Path) -> list[str]:
    listed = run(["git", "worktree", "list", "--porcelain"], clone).stdout
    return [line for line in listed.splitlines() if line.startswith("worktree ")]


def test_report_of_a_pull_request_against_the_team_store(origin: dict[str, Any]) -> None:
    clone = _clone(origin, "runner")
    actions = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "team/model",
               "GITHUB_RUN_ID": "42"}  # fmt: skip
    done = _report(clone, origin["store"], **actions)
    assert FALLBACK not in done.stdout
    run_url = "https://github.com/team/model/actions/runs/42"
    link = f"the artifact epochline-compare of [this run]({run_url})"
    _check_report(clone, origin["store"], origin["models"], link)
    assert "**Note:**" not in (clone / OUT / "comment.md").read_text()
    # The report changes nothing git tracks: the pulled outputs were the committed ones.
    assert run(["git", "status", "--porcelain"], clone).stdout == ""


def test_a_base_missing_from_the_store_is_built_in_a_worktree(
    origin: dict[str, Any], tmp_path: Path
) -> None:
    clone = _clone(origin, "fresh-store")
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"  # a store that has seen neither branch
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    done = _report(clone, fresh, RUNNER_TEMP=str(scratch))
    assert f"origin/main's model {FALLBACK}" in done.stdout
    report = _check_report(clone, fresh, origin["models"])
    # Built from main's commit, it is main's model (the digest found it): the same numbers
    # as the team store's run of it.
    team = _run_of(origin["store"], origin["models"]["main"])
    logged = team.data.metrics
    assert report["a"]["metrics"] == {k: logged[f"test_{k}"] for k in report["a"]["metrics"]}
    assert report["a"]["run_id"] != team.info.run_id
    assert _worktrees(clone) == [f"worktree {clone}"]
    (tree,) = re.findall(r"^pr-report: the worktree is (.+)$", done.stdout, re.MULTILINE)
    assert Path(tree).parent == scratch and not Path(tree).exists()


def test_a_dvc_lock_left_uncommitted_compares_the_model_built_here(
    origin: dict[str, Any],
) -> None:
    clone = _clone(origin, "stale-lock")
    run(["git", "checkout", "-qb", "stale"], clone)
    set_params(clone, {"train": {"lr": 0.02}})
    run(["git", "commit", "-qam", "params changed, dvc.lock not"], clone)
    done = _report(clone, origin["store"])
    report = json.loads((clone / OUT / "report.json").read_text())
    built = json.loads((clone / "models/model.json").read_text())
    expected = _run_of(origin["store"], built)
    assert built["model_digest"] != origin["models"]["feature"]["model_digest"]
    _check_side(report["b"], expected, expected.info.run_id)
    assert f"pipeline: run '{expected.info.run_name}' ({expected.info.run_id})" in done.stdout
    comment = (clone / OUT / "comment.md").read_text()
    assert comment.splitlines()[0] == MARKER
    assert f"the model built here is compared: run `{expected.info.run_id}`" in comment
