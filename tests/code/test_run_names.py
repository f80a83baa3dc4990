"""A run's name says what differs from its baseline: params.yaml, and the batches."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from epochline.core.params import Params
from epochline.tracking.store import batch_changes, params_changes, run_context

REPO = Path(__file__).resolve().parents[2]

BASE = Params().flat()


def _with(**changes: object) -> dict[str, object]:
    return {**BASE, **changes}


@pytest.mark.parametrize(
    ("now", "name"),
    [
        (BASE, ""),
        (_with(**{"train.lr": 0.01}), "lr=0.01"),
        (_with(**{"train.lr": 0.01, "train.epochs": 10}), "lr=0.01 epochs=10"),
        # `seed` is in several sections: the full key says which.
        (_with(**{"train.seed": 7}), "train.seed=7"),
        (_with(**{"data.id_column": "id"}), "id_column=id"),
        # Knobs that do not change what train makes are not part of the name.
        (_with(**{"retrain.min_delta": 0.05, "tracking.experiment_name": "x"}), ""),
    ],
)
def test_name_lists_changed_training_params_by_short_name(
    now: dict[str, object], name: str
) -> None:
    assert params_changes(now, BASE) == name


def test_no_baseline_means_nothing_to_name() -> None:
    assert params_changes(_with(**{"train.lr": 0.01}), {}) == ""


@pytest.mark.parametrize(
    ("now", "baseline", "name"),
    [
        ({}, {}, ""),
        ({"b1": "a"}, {"b1": "a"}, ""),
        ({"b1": "a", "b2": "b", "b3": "c"}, {"b1": "a"}, "+2 batches"),
        ({"b1": "a", "b2": "b"}, {"b1": "a"}, "+1 batch"),
        ({"b1": "edited"}, {"b1": "a"}, "+1 batch"),  # same name, other bytes: other data
        ({}, {"b1": "a"}, "-1 batch"),
        ({"b2": "b"}, {"b1": "a"}, "+1 batch -1 batch"),
    ],
)
def test_batch_changes_count_files_the_baseline_lacks_or_has_beyond_the_data(
    now: dict[str, str], baseline: dict[str, str], name: str
) -> None:
    assert batch_changes(now, baseline) == name


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project whose commit holds params.yaml and one batch; load read two more."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DVC_EXP_BASELINE_REV", raising=False)
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    shutil.copy(REPO / "params.yaml", "params.yaml")
    incoming = Path("data/incoming")
    incoming.mkdir(parents=True)
    (incoming / ".gitkeep").touch()
    (incoming / "batch-0001.csv").write_text("x0,label\n1,0\n")
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qm", "base")
    for n in (2, 3):  # arrived since the commit, not committed
        (incoming / f"batch-000{n}.csv").write_text(f"x0,label\n{n},1\n")
    batches = [f"data/incoming/batch-000{n}.csv" for n in (1, 2, 3)]
    manifest = [{"file": "synthetic", "rows": 1000}] + [{"file": b, "rows": 1} for b in batches]
    Path("data/raw_manifest.json").write_text(json.dumps(manifest))
    return tmp_path


def test_a_run_on_batches_the_baseline_commit_lacks_says_so(repo: Path) -> None:
    head = _git(repo, "rev-parse", "HEAD")
    context = run_context(BASE, "digest", "key")
    assert context.name == f"baseline {head[:7]} +2 batches"
    assert context.tags["epochline.data_changed"] == "+2 batches"
    assert run_context(_with(**{"train.lr": 0.01}), "digest", "key").name == "lr=0.01 +2 batches"


def test_committed_batches_are_the_baseline(repo: Path) -> None:
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qm", "batches")
    head = _git(repo, "rev-parse", "HEAD")
    assert run_context(BASE, "digest", "key").name == f"baseline {head[:7]}"
    # A batch edited after its commit is other data.
    Path("data/incoming/batch-0002.csv").write_text("x0,label\n9,1\n")
    assert run_context(BASE, "digest", "key").name == f"baseline {head[:7]} +1 batch"
