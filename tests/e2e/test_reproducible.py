"""Same params, data and code ⇒ the same bytes in every output, in separate processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO, copy_project, run

pytestmark = pytest.mark.slow

OUTPUT_DIRS = ("data", "models", "reports")


def outputs(project: Path) -> dict[str, bytes]:
    """Every file the pipeline wrote or tracks under data/, models/ and reports/."""
    return {
        str(path.relative_to(project)): path.read_bytes()
        for folder in OUTPUT_DIRS
        for path in sorted((project / folder).rglob("*"))
        if path.is_file()
    }


def test_two_projects_give_byte_identical_outputs(tmp_path: Path) -> None:
    first = copy_project(tmp_path / "first")
    second = copy_project(tmp_path / "second")
    run(["dvc", "repro"], first)
    run(["dvc", "repro"], second)  # another process, another directory, another store
    a, b = outputs(first), outputs(second)
    expected = {"models/model.pt", "models/model.json", "data/split/test.parquet",
                "reports/metrics.json", "reports/roc.json", "reports/confusion.csv",
                "reports/train_history.json", "reports/test_predictions.parquet",
                "data/raw.parquet", "data/normalized.parquet", "data/preprocessor.json",
                "data/schema.json"}  # fmt: skip
    assert expected <= set(a) and set(a) == set(b)
    differ = [name for name in a if a[name] != b[name]]
    assert differ == [], f"outputs differ between two runs: {differ}"
    assert (first / "dvc.lock").read_bytes() == (second / "dvc.lock").read_bytes()
    # No temporary file name leaks into the checkpoint archive.
    assert b".tmp" not in a["models/model.pt"] and b"archive/data.pkl" in a["models/model.pt"]


def test_a_fresh_clone_on_the_defaults_leaves_git_status_clean(tmp_path: Path) -> None:
    # The README's `make pipeline` step, on the committed params, dvc.lock and reports.
    project = copy_project(tmp_path / "project", shrink=False)
    done = run(["epochline", "repro"], project)
    status = run(["git", "status", "--porcelain"], project).stdout
    assert status == "", f"the pipeline changed tracked files:\n{status}"
    summary = done.stdout
    assert summary.startswith("pipeline: run 'baseline ")
    # What the README's Quick start shows `make pipeline` printing, to the digit.
    readme = (REPO / "README.md").read_text()
    shown = next(line for line in readme.splitlines() if line.startswith("  test (200 rows): "))
    assert f"\n{shown}\n" in summary, (shown, summary)
    assert "workflowType=machine_learning" in summary
    # No remote is configured: DVC's `dvc push` hint is dropped, and none is given.
    assert "dvc push" not in done.stdout + done.stderr
