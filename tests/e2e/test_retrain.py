"""The scheduled-retraining loop, end to end: real DVC, real MLflow registry, temp git repo."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import SMALL, copy_project, run, set_params, tool_env, trained_run

pytestmark = pytest.mark.slow

NAME = "epochline-classifier"
EPOCHLINE = str(Path(sys.executable).parent / "epochline")
WEAK = {"epochs": 1, "lr": 0.0001}


def epochline(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run([EPOCHLINE, *args], project, check=check)


def registry(project: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{project / 'mlflow.db'}")


def versions(project: Path) -> list[str]:
    found = registry(project).search_model_versions(f"name = '{NAME}'")
    return sorted((str(v.version) for v in found), key=int)


def alias(project: Path, name: str) -> str | None:
    try:
        return str(registry(project).get_model_version_by_alias(NAME, name).version)
    except mlflow.exceptions.MlflowException:
        return None


def tags(project: Path, version: str) -> dict[str, str]:
    return registry(project).get_model_version(NAME, version).tags


def test_first_model_becomes_champion_and_an_unchanged_pipeline_adds_no_version(
    tmp_path: Path,
) -> None:
    project = copy_project(tmp_path / "project")
    run(["dvc", "repro"], project)  # a plain repro first: its model is registered and judged
    first = epochline(project, "retrain")
    assert "PROMOTED challenger v1" in first.stdout
    assert versions(project) == ["1"] and alias(project, "champion") == "1"
    version_tags = tags(project, "1")
    assert version_tags["epochline.decision"] == "promoted"
    assert float(version_tags["epochline.challenger_value"]) >= 0.7
    assert len(version_tags["epochline.data_digest"]) == 16
    assert version_tags["epochline.git_commit"]

    again = epochline(project, "retrain")
    assert "UNCHANGED" in again.stdout and "already version 1" in again.stdout
    assert versions(project) == ["1"]
    assert "look: reports/retrain/report.md" in first.stdout and "test (" in first.stdout

    # The report is a run artifact, in JSON and Markdown, and on disk.
    run_id = registry(project).get_model_version(NAME, "1").run_id
    artifacts = {a.path for a in registry(project).list_artifacts(run_id, "retrain")}
    assert artifacts == {"retrain/report.json", "retrain/report.md"}
    report = json.loads((project / "reports/retrain/report.json").read_text())
    assert report["comparison"]["decision"] == "promoted"
    assert registry(project).get_run(run_id).data.tags["epochline.retrain.decision"] == "promoted"


def test_new_batch_then_retrain_registers_judges_and_reports_drift(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    epochline(project, "retrain")
    made = epochline(project, "new-batch", "--rows", "300", "--drift", "1.5")
    assert "data/incoming/batch-0001.csv" in made.stdout

    second = epochline(project, "retrain")
    assert versions(project) == ["1", "2"]
    decision = tags(project, "2")["epochline.decision"]
    assert decision in ("promoted", "kept")
    assert alias(project, "challenger") == "2"
    assert alias(project, "champion") == ("2" if decision == "promoted" else "1")
    assert decision.upper() in second.stdout
    report = json.loads((project / "reports/retrain/report.json").read_text())
    assert report["drift"]["new_batches"] == ["batch-0001.csv"]
    assert report["drift"]["new_rows"] == 300
    assert all(f["drifted"] for f in report["drift"]["features"])  # every feature shifted
    comparison = report["comparison"]
    assert comparison["champion"] is not None and comparison["ci_low"] is not None
    run_id = registry(project).get_model_version(NAME, "2").run_id
    assert "drift_psi_x0" in registry(project).get_run(run_id).data.metrics


def test_worse_challenger_is_kept_out_better_one_promoted_and_rollback_restores(
    tmp_path: Path,
) -> None:
    # A floor of 0, and no logistic regression to beat, let a weak first model be champion,
    # so a better one has something to beat.
    weak_champion = {"retrain": {"min_metric": 0.0, "require_beats_baseline": False}}
    project = copy_project(tmp_path / "project", weak_champion)
    set_params(project, {"train": WEAK})
    epochline(project, "retrain")
    assert alias(project, "champion") == "1"

    set_params(project, {"train": SMALL["train"] | {"lr": 0.015}})
    better = epochline(project, "retrain")
    assert "PROMOTED" in better.stdout, better.stdout
    assert alias(project, "champion") == "2" and alias(project, "previous-champion") == "1"
    assert tags(project, "2")["epochline.replaced_version"] == "1"

    set_params(project, {"train": {"epochs": 1, "lr": 0.0002}})
    worse = epochline(project, "retrain")
    assert "KEPT" in worse.stdout, worse.stdout
    assert "the challenger is worse" in worse.stdout and "could be noise" not in worse.stdout
    assert tags(project, "3")["epochline.decision"] == "kept"
    assert alias(project, "champion") == "2" and alias(project, "challenger") == "3"

    back = epochline(project, "rollback", "--reason", "bad predictions in prod")
    assert "v2 -> v1" in back.stdout
    assert alias(project, "champion") == "1" and alias(project, "previous-champion") is None
    assert tags(project, "2")["epochline.rollback_reason"] == "bad predictions in prod"
    no_more = epochline(project, "rollback", "--reason", "again", check=False)
    assert no_more.returncode == 1 and "previous-champion" in no_more.stderr
    assert alias(project, "champion") == "1"


def test_corrupt_batch_fails_naming_the_file_and_touches_nothing(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    epochline(project, "retrain")
    client = registry(project)
    runs_before = [(r.info.run_id, r.info.status) for r in client.search_runs(["1"])]
    batch = pd.read_parquet(project / "data/split/test.parquet").head(20)
    batch = batch.astype({"x3": object})
    batch.loc[5, "x3"] = "n.a."  # text in a numeric column (a gap would be legitimate data)
    batch.to_csv(project / "data/incoming/batch-0001.csv", index=False)

    failed = epochline(project, "retrain", check=False)
    assert failed.returncode == 2  # the load stage's user error, through DVC
    assert "Traceback" not in failed.stderr
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and "batch-0001.csv" in last and "x3" in last
    assert versions(project) == ["1"] and alias(project, "champion") == "1"
    assert [(r.info.run_id, r.info.status) for r in client.search_runs(["1"])] == runs_before


def test_second_retrain_started_meanwhile_exits_75_naming_the_holder(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    holder = project / ".epochline-retrain.lock.holder"
    first = subprocess.Popen(
        [EPOCHLINE, "retrain"],
        cwd=project,
        env=tool_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not holder.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert holder.exists(), "the first retrain never took the lock"
        second = epochline(project, "retrain", check=False)
    finally:
        _out, err = first.communicate(timeout=300)
    assert second.returncode == 75
    (line,) = second.stderr.strip().splitlines()[-1:]
    # A skip, not a failure: no `error:` for a scheduler's log scanner to page someone about.
    assert line.startswith("skipped: another retrain is running") and f"pid {first.pid}" in line
    assert "error" not in second.stderr.lower()
    assert first.returncode == 0, err
    assert "started" in line


def test_lock_left_by_a_killed_retrain_is_taken_over_with_a_warning(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    killer = (
        "import os, signal\n"
        "from pathlib import Path\n"
        "from epochline.retrain.lock import exclusive\n"
        "with exclusive(Path('.epochline-retrain.lock')):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    dead = subprocess.run([sys.executable, "-c", killer], cwd=project, env=tool_env())
    assert dead.returncode == -signal.SIGKILL
    stale = json.loads((project / ".epochline-retrain.lock.holder").read_text())

    done = epochline(project, "retrain")
    assert "stale lock" in done.stderr and f"pid {stale['pid']}" in done.stderr
    assert alias(project, "champion") == "1"
    assert not (project / ".epochline-retrain.lock.holder").exists()


def test_predict_with_the_champion_matches_pyfunc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = copy_project(tmp_path / "project")
    epochline(project, "retrain")
    rows = pd.read_parquet(project / "data/split/test.parquet").drop(columns="label")
    rows.to_csv(project / "rows.csv", index=False)
    epochline(project, "predict", "--input", "rows.csv", "--output", "preds.csv")
    predicted = pd.read_csv(project / "preds.csv")
    assert list(predicted.columns) == ["row", "label_probability", "label_predicted"]
    assert predicted["row"].tolist() == list(range(1, len(predicted) + 1))

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    expected = mlflow.pyfunc.load_model(f"models:/{NAME}@champion").predict(
        pd.read_csv(project / "rows.csv")
    )
    assert predicted["label_predicted"].tolist() == expected["label"].tolist()
    assert (predicted["label_probability"] - expected["probability"]).abs().max() < 1e-12

    # The README's own example: labelled test rows in, no warning about the extra column.
    readme = epochline(
        project, "predict", "--input", "data/split/test.parquet", "--output", "preds2.csv"
    )
    assert "warn" not in (readme.stdout + readme.stderr).lower(), readme.stderr
    assert pd.read_csv(project / "preds2.csv")["label_predicted"].tolist() == (
        predicted["label_predicted"].tolist()
    )


def test_a_version_registered_by_a_retrain_that_died_is_judged_next_time(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    run(["dvc", "repro"], project)
    trained = trained_run(project)
    # What a retrain killed between registering and recording leaves: a bare version.
    # (The registry resolves a models:/m-… source through the global tracking URI.)
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    client = registry(project)
    client.create_registered_model(NAME)
    client.create_model_version(
        NAME, trained.data.tags["epochline.model_uri"], run_id=trained.info.run_id,
        tags={"epochline.model_digest": trained.data.tags["epochline.model_digest"]},
    )  # fmt: skip
    done = epochline(project, "retrain")
    assert "PROMOTED challenger v1" in done.stdout
    assert versions(project) == ["1"] and tags(project, "1")["epochline.decision"] == "promoted"


def test_a_champion_held_out_on_other_rows_is_not_compared(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    epochline(project, "retrain")
    set_params(project, {"split": {"seed": 7}})
    done = epochline(project, "retrain")
    assert "KEPT" in done.stdout and "not comparable" in done.stdout
    assert "split.seed 42 -> 7" in done.stdout
    assert alias(project, "champion") == "1" and alias(project, "challenger") == "2"


def test_the_same_model_trained_again_registers_nothing_and_the_registry_says_which(
    tmp_path: Path,
) -> None:
    project = copy_project(tmp_path / "project")
    epochline(project, "retrain")
    runs_before = len(registry(project).search_runs(["1"]))
    model_pt = (project / "models/model.pt").read_bytes()

    # Train again in a new process: the same bytes, the same run, no new version.
    run(["dvc", "repro", "--force"], project)
    assert (project / "models/model.pt").read_bytes() == model_pt
    assert len(registry(project).search_runs(["1"])) == runs_before
    again = epochline(project, "retrain")
    assert "UNCHANGED" in again.stdout and versions(project) == ["1"]

    # The same weights logged as another run (another experiment): still version 1, and
    # version 1 names that run as identical.
    set_params(project, {"tracking": {"experiment_name": "elsewhere"}})
    moved = epochline(project, "retrain")
    assert "UNCHANGED" in moved.stdout and "already version 1" in moved.stdout, moved.stdout
    assert versions(project) == ["1"]
    other = trained_run(project, "elsewhere")
    assert other.info.run_id != registry(project).get_model_version(NAME, "1").run_id
    assert tags(project, "1")["epochline.identical_run"] == other.info.run_id
    assert other.data.tags["epochline.registered_version"] == "1"


def test_outputs_without_their_run_in_the_store_are_trained_again_not_a_crash(
    tmp_path: Path,
) -> None:
    # A runner that pulled the outputs but talks to another (here: an empty) store.
    project = copy_project(tmp_path / "project")
    run(["dvc", "repro"], project)
    lock = (project / "dvc.lock").read_bytes()
    model_pt = (project / "models/model.pt").read_bytes()
    (project / "mlflow.db").unlink()
    shutil.rmtree(project / "mlartifacts")
    done = epochline(project, "retrain")
    assert "training it again against this store" in done.stderr
    assert "PROMOTED challenger v1" in done.stdout, done.stdout
    # Deterministic: the same bytes, so DVC's record of the outputs does not change.
    assert (project / "models/model.pt").read_bytes() == model_pt
    assert (project / "dvc.lock").read_bytes() == lock
