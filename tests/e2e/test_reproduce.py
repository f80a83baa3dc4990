"""`epochline reproduce`: a run rebuilt from what it recorded, compared bit for bit.

One project serves the module: a plain `epochline repro`, then runs whose record is changed
where it lands (the store, the checkpoint file, the DVC cache) and put back, and a `dvc exp
run` whose workspace is put back, so the tests pass in any order. A run made from changed
code, and the champion after two retrains, have projects of their own.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
import yaml

from epochline.training.model import checkpoint_bytes
from tests.conftest import copy_project, run, store, trained_run, workspace_restored

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = copy_project(tmp_path_factory.mktemp("reproduce") / "project")
    run(["epochline", "repro"], project)
    return project


def _reproduce(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(["epochline", "reproduce", *args], project, check=False)


def _state(project: Path) -> tuple[str, str, list[tuple[str, str, int]]]:
    """What a reproduce must leave as it was: the workspace, the worktrees, the store."""
    status = run(["git", "status", "--porcelain"], project).stdout
    worktrees = run(["git", "worktree", "list", "--porcelain"], project).stdout
    runs = store(project).search_runs(["1"])
    return status, worktrees, [(r.info.run_id, r.info.status, len(r.data.tags)) for r in runs]


@contextmanager
def _tag(project: Path, run_id: str, key: str, value: str) -> Iterator[None]:
    """The run's record says `value` for `key` for the block (then what it said before)."""
    client = store(project)
    before = client.get_run(run_id).data.tags[key]
    client.set_tag(run_id, key, value)
    try:
        yield
    finally:
        client.set_tag(run_id, key, before)


def test_a_plain_run_is_rebuilt_identical(project: Path, tmp_path: Path) -> None:
    run_id = trained_run(project).info.run_id
    before = _state(project)
    kept = tmp_path / "kept"
    done = _reproduce(project, run_id, "--keep", str(kept))
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert line.startswith("reproduce: IDENTICAL: run ") and run_id in line, line
    assert "metrics over 30 epochs" in line and f"kept in {kept}" in line
    # The rebuilt checkpoint is the same file, byte for byte, in a store of its own.
    assert (kept / "models/model.pt").read_bytes() == (project / "models/model.pt").read_bytes()
    assert (kept / "mlflow.db").is_file()
    run(["git", "worktree", "remove", "--force", str(kept)], project)
    assert _state(project) == before


def test_a_tampered_checkpoint_is_different(project: Path) -> None:
    trained = trained_run(project)
    model_id = trained.data.tags["epochline.model_uri"].removeprefix("models:/")
    # Other tests' experiments log models of their own: this run's is under its model id.
    found = (project / "mlartifacts").rglob("artifacts/model.pt")
    logged = [p for p in found if model_id in p.parts]
    assert len(logged) == 1, logged
    original = logged[0].read_bytes()
    checkpoint = torch.load(logged[0], weights_only=True)
    first = next(iter(checkpoint["state_dict"]))
    checkpoint["state_dict"][first] = checkpoint["state_dict"][first] + 1e-3
    logged[0].write_bytes(checkpoint_bytes(checkpoint))
    try:
        done = _reproduce(project, trained.info.run_id)
    finally:
        logged[0].write_bytes(original)
    assert done.returncode == 1, done.stderr
    assert "reproduce: DIFFERENT: " in done.stdout
    assert "model: changed after the run: its logged checkpoint is model" in done.stdout


def test_a_changed_dependency_version_is_named(project: Path) -> None:
    run_id = trained_run(project).info.run_id
    here = torch.__version__.split("+")[0]
    before = _state(project)
    with _tag(project, run_id, "epochline.version.torch", "2.12.0"):
        done = _reproduce(project, run_id)
    assert _state(project) == before  # the temporary worktree and store are gone
    # The same bits all the same: IDENTICAL, and the environment's difference is said.
    assert done.returncode == 0, done.stderr
    assert "reproduce: IDENTICAL: " in done.stdout
    assert f"environment differs: torch 2.12.0 in the run, {here} here" in done.stdout


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("epochline.git_dirty", "true", "dirty tree at the time"),
        ("epochline.git_commit", "0" * 40, "commit 000000000000 cannot be found"),
    ],
    ids=["dirty", "commit-gone"],
)
def test_a_run_that_cannot_be_rebuilt_says_why(
    project: Path, key: str, value: str, reason: str
) -> None:
    run_id = trained_run(project).info.run_id
    before = _state(project)
    with _tag(project, run_id, key, value):
        done = _reproduce(project, run_id)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: reproduce: ") and reason in lines[0]
    assert _state(project) == before


def test_a_run_from_changed_code_cannot_be_rebuilt(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    code = project / "src/epochline/evaluation/metrics.py"  # committed in the project, then changed
    code.write_text(code.read_text() + "\n# a change nobody committed\n")
    assert run(["git", "status", "--porcelain"], project).stdout.strip() == (
        "M src/epochline/evaluation/metrics.py"
    )
    run(["epochline", "repro"], project)
    trained = trained_run(project)
    assert trained.data.tags["epochline.git_dirty"] == "true"  # from git, not set by hand
    before = _state(project)
    done = _reproduce(project, trained.info.run_id)
    assert done.returncode == 2, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: reproduce: ") and "dirty tree at the time" in line, line
    assert _state(project) == before


def test_data_no_longer_in_any_cache_cannot_be_rebuilt(project: Path) -> None:
    run_id = trained_run(project).info.run_id
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    md5 = next(o["md5"] for o in lock["stages"]["load"]["outs"] if o["path"] == "data/raw.parquet")
    cached = project / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    aside = cached.with_name(cached.name + ".aside")
    cached.rename(aside)
    try:
        done = _reproduce(project, run_id)
    finally:
        aside.rename(cached)
    assert done.returncode == 2, done.stderr
    assert "the run's data is no longer in any cache or remote" in done.stderr.splitlines()[-1]


def test_an_unknown_target_is_one_line(project: Path) -> None:
    done = _reproduce(project, "not-a-run")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: reproduce: 'not-a-run' is not a run id (32 hex digits), runs:/ID, "
        "models:/NAME/VERSION or models:/NAME@ALIAS"
    ]


def test_an_experiment_whose_params_were_never_committed_is_identical(project: Path) -> None:
    with workspace_restored(project):  # the workspace moves on: back to the module's repro
        run(["dvc", "exp", "run", "-S", "train.lr=0.03", "-n", "faster"], project)
    client = store(project)
    [exp] = client.search_runs(["1"], filter_string="tags.`epochline.dvc_exp_name` = 'faster'")
    assert exp.data.tags["epochline.git_dirty"] == "false"  # params.yaml differs, code not
    assert exp.data.tags["epochline.dvc_exp_ref"].endswith("/faster")
    done = _reproduce(project, exp.info.run_id)
    assert done.returncode == 0, done.stderr
    assert "reproduce: IDENTICAL: " in done.stdout


def test_the_champion_after_two_retrains_is_identical(tmp_path: Path) -> None:
    # A first champion of 3 epochs (no floor, no yardstick to pass), then one of 30 that
    # is clearly better on any metric.
    weak = {"train": {"epochs": 3}, "retrain": {"min_metric": 0.0, "require_beats_baseline": False}}
    project = copy_project(tmp_path / "project", weak)
    run(["epochline", "retrain"], project)
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("epochs: 3\n", "epochs: 30\n"))
    run(["epochline", "new-batch", "--rows", "300"], project)
    second = run(["epochline", "retrain"], project)
    assert "retrain: PROMOTED challenger v2" in second.stdout, second.stdout
    done = _reproduce(project, "models:/epochline-classifier@champion")
    assert done.returncode == 0, done.stderr
    assert "reproduce: IDENTICAL: " in done.stdout
