"""No secret anywhere; then services failing under a running pipeline: one line naming the
server, in seconds, and nothing left RUNNING where the server can still be told.

The tests share this module's stack and run in file order: the first needs it whole, the
later ones break it (the object store, then the MLflow server)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psycopg2
import pytest

from devtools.teamstack import Stack
from tests.conftest import tool_env
from tests.team.conftest import bucket_keys, client, team_project, team_run, user_env, with_remote

pytestmark = [pytest.mark.slow, pytest.mark.team]


def _kill(stack: Stack, name: str) -> None:
    (proc,) = [p for p in stack.processes if p.name == name]
    os.killpg(proc.pgid, signal.SIGKILL)


def _error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


def test_no_secret_in_params_tags_artifacts_dvc_files_logs_or_reports(
    stack: Stack, tmp_path: Path
) -> None:
    project = team_project(tmp_path / "project", tracking={"experiment_name": "secrets"})
    with_remote(project, stack, "dvc-secrets")
    password = stack.trainer.password
    # The credentials inside the URI, as some people set them.
    host = stack.tracking_uri.removeprefix("http://")
    env = {
        "MLFLOW_TRACKING_URI": f"http://{stack.trainer.username}:{password}@{host}",
        "AWS_ACCESS_KEY_ID": stack.aws_access_key_id,
        "AWS_SECRET_ACCESS_KEY": stack.aws_secret_access_key,
    }
    logs = [team_run(["epochline", "repro"], project, env)]
    logs.append(team_run(["epochline", "retrain", "--push"], project, env))
    secrets = {password, stack.aws_secret_access_key, stack.aws_access_key_id}

    def leaks(where: str, text: str) -> None:
        found = [s[:4] + "…" for s in secrets if s in text]
        assert not found, f"{where} holds a secret ({found})"

    for i, done in enumerate(logs):
        leaks(f"command {i} output", done.stdout + done.stderr)
    for path in project.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            leaks(str(path.relative_to(project)), path.read_bytes().decode("latin-1"))
    # Every table of the tracking database, as text: params, tags, inputs, model versions.
    with psycopg2.connect(stack.database_uri.replace("postgresql+psycopg2", "postgresql")) as db:
        cur = db.cursor()
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        for (table,) in cur.fetchall():
            cur.execute(f'SELECT * FROM "{table}"')
            leaks(f"table {table}", repr(cur.fetchall()))
    # Every object in the bucket: run artifacts, logged models, the DVC remote.
    import boto3

    s3 = boto3.client(
        "s3", endpoint_url=stack.s3_endpoint, region_name="us-east-1",
        aws_access_key_id=stack.aws_access_key_id,
        aws_secret_access_key=stack.aws_secret_access_key,
    )  # fmt: skip
    keys = bucket_keys(stack)
    assert any(k.startswith("dvc-secrets/") for k in keys)
    for key in keys:
        body = s3.get_object(Bucket="epochline", Key=key)["Body"].read()
        leaks(f"s3://epochline/{key}", body.decode("latin-1"))


def test_object_store_down_fails_the_run_on_the_server_with_one_line(
    own_stack: Stack, tmp_path: Path
) -> None:
    stack = own_stack  # it kills a service: the other tests keep theirs
    project = team_project(tmp_path / "project", tracking={"experiment_name": "no-s3"})
    env = user_env(stack)
    team_run(["dvc", "repro", "split"], project, env)
    _kill(stack, "s3")
    done = team_run(["dvc", "repro"], project, env, check=False)
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    (line,) = _error_lines(done.stderr)
    assert stack.tracking_uri in line, line
    # The server could be told: the run is FAILED, not RUNNING.
    experiment = client(stack).get_experiment_by_name("no-s3")
    assert experiment is not None
    statuses = [r.info.status for r in client(stack).search_runs([experiment.experiment_id])]
    assert statuses == ["FAILED"], statuses
    assert not (project / "models/model.json").exists()
    assert [p.name for p in (project / "models").iterdir() if ".tmp" in p.name] == []


def test_server_stopped_mid_run_fails_in_seconds_with_one_line(
    own_stack: Stack, tmp_path: Path
) -> None:
    stack = own_stack  # it kills a service: the other tests keep theirs
    long = {"epochs": 5000, "patience": None}  # still training when the server goes
    project = team_project(tmp_path / "project", train=long, tracking={"experiment_name": "killed"})
    env = user_env(stack)
    team_run(["dvc", "repro", "split"], project, env)
    repro = subprocess.Popen(
        ["dvc", "repro"], cwd=project, env=tool_env(**env), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not _running_epochs(stack):
            time.sleep(0.5)
        assert _running_epochs(stack), "training never started logging epochs"
        _kill(stack, "mlflow")
        _out, err = repro.communicate(timeout=300)
    finally:
        repro.kill()
    assert repro.returncode != 0 and "Traceback" not in err, err
    (line,) = _error_lines(err)
    assert stack.tracking_uri in line, line
    assert not (project / "models/model.json").exists()


def _running_epochs(stack: Stack) -> bool:
    experiment = client(stack).get_experiment_by_name("killed")
    if experiment is None:
        return False
    runs = client(stack).search_runs([experiment.experiment_id])
    return bool(runs) and "val_loss" in runs[0].data.metrics
