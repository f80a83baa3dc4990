"""The Makefile's promises that need no venv: `make clean` removes what the tools generate."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

GENERATED = [
    "mlflow.db", "mlartifacts/1/x", "dvc_plots/index.html", "data/raw.parquet",
    "models/model.pt", "models/model.json", "reports/test_predictions.parquet",
    "reports/retrain/report.md", ".epochline-retrain.lock", ".epochline-retrain.lock.holder",
    "bench/results/bench.json",
]  # fmt: skip
KEPT = ["reports/metrics.json", "params.yaml", "dvc.lock"]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_clean_removes_generated_files_and_keeps_tracked_ones(tmp_path: Path) -> None:
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    for rel in GENERATED + KEPT:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    done = subprocess.run(["make", "clean"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert [rel for rel in GENERATED if (tmp_path / rel).exists()] == []
    assert all((tmp_path / rel).exists() for rel in KEPT)


def test_generated_files_are_git_ignored() -> None:
    names = ["dvc_plots/index.html", "mlflow.db", "mlartifacts/x", ".epochline-retrain.lock",
             "bench/results/bench.md"]  # fmt: skip
    done = subprocess.run(
        ["git", "check-ignore", "--no-index", *names], cwd=REPO, capture_output=True, text=True
    )
    assert sorted(done.stdout.split()) == sorted(names)
