"""A real team stack per module: PostgreSQL, an S3 server (moto) and `mlflow server` with
basic auth, all on 127.0.0.1, started by devtools.teamstack and stopped after the module."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from mlflow.tracking import MlflowClient

from devtools import teamstack
from devtools.teamstack import Credentials, Stack
from tests.conftest import copy_project, missing_tool, run, tool_env

# Every request to a basic-auth server checks the password hash (~0.5 s here), so each
# epoch's metrics cost that much: the team tests train for few epochs.
EPOCHS = 8


def team_project(dest: Path, **sections: dict[str, object]) -> Path:
    """A shrunk project for the team tests: few epochs, a floor any first model passes."""
    overrides = {"train": {"epochs": EPOCHS}, "retrain": {"min_metric": 0.0}}
    for name, values in sections.items():
        overrides[name] = {**overrides.get(name, {}), **values}
    return copy_project(dest, overrides)


def _postgres_installed() -> bool:
    return any(Path("/usr/lib/postgresql").glob("*/bin/initdb"))


def _started() -> Iterator[Stack]:
    if not _postgres_installed():
        missing_tool("postgres", "apt-get install postgresql, for its server binaries")
    # Not under pytest's 0700 tmp folder: the cluster runs as an unprivileged user.
    state = Path(tempfile.mkdtemp(prefix="epochline-team-"))
    state.chmod(0o711)
    try:
        running = teamstack.start(state / "stack")
        yield running
    finally:
        teamstack.stop(state / "stack")
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    yield from _started()


@pytest.fixture
def own_stack() -> Iterator[Stack]:
    """A stack for one test alone: for a test that kills one of its services."""
    yield from _started()


def user_env(stack: Stack, creds: Credentials | None = None, **extra: str) -> dict[str, str]:
    env = stack.user_env()
    if creds is not None:
        env |= {
            "MLFLOW_TRACKING_USERNAME": creds.username,
            "MLFLOW_TRACKING_PASSWORD": creds.password,
        }
    return env | extra


def team_run(
    args: list[str], cwd: Path, env: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    return run(args, cwd, check=check, **env)


def client(stack: Stack, creds: Credentials | None = None) -> MlflowClient:
    """A client as `creds` (default: admin), credentials passed the way users pass them."""
    who = creds or stack.admin
    # MLflow's client reads basic-auth credentials from the environment on every request;
    # tests/conftest.py puts the environment back after the test (or module fixture).
    os.environ["MLFLOW_TRACKING_USERNAME"] = who.username
    os.environ["MLFLOW_TRACKING_PASSWORD"] = who.password
    return MlflowClient(stack.tracking_uri, registry_uri=stack.tracking_uri)


def bucket_keys(stack: Stack, prefix: str = "") -> list[str]:
    s3 = boto3.client(
        "s3", endpoint_url=stack.s3_endpoint, region_name="us-east-1",
        aws_access_key_id=stack.aws_access_key_id,
        aws_secret_access_key=stack.aws_secret_access_key,
    )  # fmt: skip
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=teamstack.BUCKET, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def with_remote(project: Path, stack: Stack, path: str) -> None:
    """The project's default DVC remote in the stack's bucket (endpoint in the local config)."""
    env = tool_env()
    for args in (
        ["dvc", "remote", "add", "-d", "team", f"s3://{teamstack.BUCKET}/{path}"],
        ["dvc", "remote", "modify", "--local", "team", "endpointurl", stack.s3_endpoint],
    ):
        subprocess.run(args, cwd=project, env=env, check=True, capture_output=True)
    run(["git", "add", ".dvc/config"], project)
    run(["git", "commit", "-qm", "DVC remote: the team bucket"], project)
