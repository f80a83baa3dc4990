"""Team mode against real services: `mlflow server` with basic auth on PostgreSQL, artifacts
and the DVC remote in an S3 bucket; the scheduled retrain as the GitHub workflow runs it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import mlflow
import psycopg2
import pytest

from devtools.teamstack import Stack
from tests.conftest import run, tool_env
from tests.team.conftest import (
    EPOCHS,
    bucket_keys,
    client,
    team_project,
    team_run,
    user_env,
    with_remote,
)

pytestmark = [pytest.mark.slow, pytest.mark.team]

NAME = "epochline-classifier"
SCRIPT = "deploy/scheduled-retrain.sh"


def _experiment_runs(stack: Stack, experiment: str) -> list[mlflow.entities.Run]:
    found = client(stack).get_experiment_by_name(experiment)
    return [] if found is None else client(stack).search_runs([found.experiment_id])


def test_repro_and_exp_run_land_in_postgres_and_the_bucket(stack: Stack, tmp_path: Path) -> None:
    project = team_project(tmp_path / "project", tracking={"experiment_name": "rows"})
    env = user_env(stack)
    team_run(["dvc", "repro"], project, env)
    run(["git", "commit", "-qam", "results"], project)
    team_run(["dvc", "exp", "run", "-S", "train.lr=0.01"], project, env)

    runs = _experiment_runs(stack, "rows")
    assert sorted(r.info.run_name for r in runs)[1] == "lr=0.01" and len(runs) == 2
    for r in runs:
        assert r.info.status == "FINISHED" and "test_accuracy" in r.data.metrics
        history = client(stack).get_metric_history(r.info.run_id, "val_loss")
        assert [m.step for m in history] == list(range(1, EPOCHS + 1))
        assert {d.dataset.name for d in r.inputs.dataset_inputs} == {"train", "val", "test"}
    # The rows themselves, in PostgreSQL.
    with psycopg2.connect(stack.database_uri.replace("postgresql+psycopg2", "postgresql")) as db:
        cur = db.cursor()
        cur.execute(
            "SELECT r.name, r.status FROM runs r JOIN experiments e "
            "ON r.experiment_id = e.experiment_id WHERE e.name = 'rows'"
        )
        assert sorted(cur.fetchall())[1] == ("lr=0.01", "FINISHED")
        cur.execute("SELECT count(*) FROM metrics m JOIN runs r ON m.run_uuid = r.run_uuid "
                    "WHERE r.name = 'lr=0.01' AND m.key = 'val_loss'")  # fmt: skip
        assert cur.fetchone() == (EPOCHS,)
    # The artifacts, in the bucket: the checkpoint behind the logged model, and the plots.
    keys = bucket_keys(stack, "mlartifacts/")
    assert any(k.endswith("/artifacts/checkpoint/model.pt") or k.endswith("model.pt") for k in keys)
    assert sum(k.endswith("plots/roc_curve.png") for k in keys) == 2
    assert not (project / "mlartifacts").exists() and not (project / "mlflow.db").exists()


def _scheduled(clone: Path, stack: Stack) -> subprocess.CompletedProcess[str]:
    env = user_env(stack, DVC_REMOTE_ENDPOINT=stack.s3_endpoint)
    return team_run(["bash", SCRIPT], clone, env)


def _fresh_clone(origin: Path, dest: Path) -> Path:
    run(["git", "clone", "-q", str(origin), str(dest)], origin.parent)
    return dest


def test_scheduled_retrain_from_two_fresh_clones(stack: Stack, tmp_path: Path) -> None:
    seed = team_project(tmp_path / "seed")
    with_remote(seed, stack, "dvc-scheduled")
    origin = tmp_path / "origin.git"
    run(["git", "clone", "-q", "--bare", str(seed), str(origin)], tmp_path)

    first = _scheduled(_fresh_clone(origin, tmp_path / "runner-1"), stack)
    assert "PROMOTED challenger v1" in first.stdout, first.stdout + first.stderr
    runs_after_first = len(_experiment_runs(stack, "epochline"))
    assert any(k.startswith("dvc-scheduled/files/md5/") for k in bucket_keys(stack, "dvc-"))

    # A new machine: nothing local. It pulls the outputs, sees the champion on the server,
    # and since nothing changed it reruns no stage and registers nothing.
    second_clone = _fresh_clone(origin, tmp_path / "runner-2")
    second = _scheduled(second_clone, stack)
    assert "UNCHANGED" in second.stdout and "already version 1" in second.stdout, second.stdout
    assert "Running stage" not in second.stdout + second.stderr
    assert len(_experiment_runs(stack, "epochline")) == runs_after_first
    registry = client(stack)
    assert [v.version for v in registry.search_model_versions(f"name = '{NAME}'")] == ["1"]

    # New labelled data arrives on that machine: a new version, committed and pushed.
    team_run(["epochline", "new-batch", "--rows", "300"], second_clone, user_env(stack))
    third = _scheduled(second_clone, stack)
    assert "challenger v2" in third.stdout, third.stdout
    versions = sorted(int(v.version) for v in registry.search_model_versions(f"name = '{NAME}'"))
    assert versions == [1, 2]
    log = run(["git", "log", "--format=%s", "-3"], origin).stdout
    assert "retrain: promoted v1" in log and "v2" in log.splitlines()[0]
    assert (
        "data/incoming/batch-0001.csv"
        in run(["git", "ls-tree", "-r", "HEAD", "--name-only"], origin).stdout
    )

    # The champion loads through the server, with pickle deserialisation switched off.
    client(stack, stack.viewer)
    done = subprocess.run(
        ["python", "-c", "import mlflow, pandas as pd, sys; "
         f"m = mlflow.pyfunc.load_model('models:/{NAME}@champion'); "
         "rows = pd.read_parquet('data/split/test.parquet').drop(columns='label'); "
         "print(len(m.predict(rows)))"],
        cwd=second_clone, capture_output=True, text=True,
        env=tool_env(**user_env(stack, stack.viewer), MLFLOW_ALLOW_PICKLE_DESERIALIZATION="false"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip().splitlines()[-1]) > 0

    # A third machine with nothing local rebuilds v1 from the server's record and the data
    # in the DVC remote: the same bits. Its own workspace and the server stay as they were.
    third_clone = _fresh_clone(origin, tmp_path / "runner-3")
    run(["dvc", "remote", "modify", "--local", "team", "endpointurl", stack.s3_endpoint],
        third_clone)  # fmt: skip
    runs_before = len(_experiment_runs(stack, "epochline"))
    rebuilt = team_run(["epochline", "reproduce", f"models:/{NAME}/1"], third_clone,
                       user_env(stack), check=False)  # fmt: skip
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert "reproduce: IDENTICAL: " in rebuilt.stdout
    assert len(_experiment_runs(stack, "epochline")) == runs_before
    assert run(["git", "status", "--porcelain"], third_clone).stdout == ""


def test_two_clones_training_at_once_both_land(stack: Stack, tmp_path: Path) -> None:
    projects = [
        team_project(tmp_path / f"p{i}", train={"lr": lr}, tracking={"experiment_name": "together"})
        for i, lr in enumerate((0.02, 0.03))
    ]
    env = tool_env(**user_env(stack))
    procs = [
        subprocess.Popen(["dvc", "repro"], cwd=p, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
        for p in projects
    ]  # fmt: skip
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    runs = _experiment_runs(stack, "together")
    # Each clone committed its own params: both runs are their clone's baseline.
    assert sorted(r.data.params["train.lr"] for r in runs) == ["0.02", "0.03"]
    assert all(r.info.status == "FINISHED" for r in runs)


def _error_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("error:")]


def test_wrong_password_fails_fast_naming_the_server(stack: Stack, tmp_path: Path) -> None:
    project = team_project(tmp_path / "project")
    team_run(["dvc", "repro", "split"], project, user_env(stack))  # no MLflow before train
    done = team_run(
        ["dvc", "repro"], project, user_env(stack, MLFLOW_TRACKING_PASSWORD="wrong"), check=False
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    (line,) = _error_lines(done)
    assert stack.tracking_uri in line and "MLFLOW_TRACKING_PASSWORD" in line, line
    assert not (project / "models/model.pt").exists()
    assert list((project / "models").glob(".*tmp")) == []


def test_read_only_user_cannot_register_and_is_told_so(stack: Stack, tmp_path: Path) -> None:
    project = team_project(tmp_path / "project", tracking={"registered_model_name": "ro"})
    team_run(["dvc", "repro"], project, user_env(stack))  # trained by trainer
    done = team_run(["epochline", "retrain"], project, user_env(stack, stack.viewer), check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    (line,) = _error_lines(done)
    assert stack.tracking_uri in line and "ask an MLflow admin" in line, line
    assert client(stack).search_registered_models(filter_string="name = 'ro'") == []
