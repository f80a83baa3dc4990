"""`python -m devtools.teamstack up | env | down`, the commands a person types (and `make
team-up`/`team-down` run): what `up` prints is what works against the stack it started."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import missing_tool, tool_env
from tests.team.conftest import _postgres_installed

pytestmark = [pytest.mark.slow, pytest.mark.team]

# What a user's shell runs with the printed exports: their trainer account logs a run, and
# their AWS keys see the bucket.
USE = """
import boto3, mlflow, os
mlflow.set_experiment("teamstack-cli")
with mlflow.start_run():
    mlflow.log_metric("m", 1.0)
s3 = boto3.client("s3", endpoint_url=os.environ["DVC_REMOTE_ENDPOINT"], region_name="us-east-1")
print("buckets:", *(b["Name"] for b in s3.list_buckets()["Buckets"]))
"""


def teamstack(state: Path, command: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devtools.teamstack", command, "--dir", str(state)],
        env=tool_env(**env), capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def exports(stdout: str) -> dict[str, str]:
    """`export K=V` lines as a shell would read them."""
    pairs = [shlex.split(line)[1] for line in stdout.splitlines() if line.startswith("export ")]
    return dict(pair.split("=", 1) for pair in pairs)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # ended; only its exit status is left to collect


@pytest.fixture
def state() -> Iterator[Path]:
    if not _postgres_installed():
        missing_tool("postgres", "apt-get install postgresql, for its server binaries")
    # Not under pytest's 0700 tmp folder: the cluster may run as an unprivileged user.
    parent = Path(tempfile.mkdtemp(prefix="epochline-team-cli-"))
    parent.chmod(0o711)
    try:
        yield parent / "stack"
    finally:
        if (parent / "stack").exists():
            teamstack(parent / "stack", "down")
        shutil.rmtree(parent, ignore_errors=True)


def test_up_prints_working_exports_env_repeats_them_and_down_stops_everything(
    state: Path,
) -> None:
    up = teamstack(state, "up")
    assert up.returncode == 0, up.stderr
    printed = exports(up.stdout)
    assert set(printed) == {
        "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "DVC_REMOTE_ENDPOINT",
    }  # fmt: skip
    assert printed["MLFLOW_TRACKING_USERNAME"] == "trainer"
    assert f"python -m devtools.teamstack down --dir {state}" in up.stdout

    used = subprocess.run(
        [sys.executable, "-c", USE], env=tool_env(**printed),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert used.returncode == 0, used.stderr
    assert used.stdout.splitlines()[-1] == "buckets: epochline", used.stdout  # MLflow prints too
    wrong_password = printed | {"MLFLOW_TRACKING_PASSWORD": "wrong"}
    wrong = subprocess.run(
        [sys.executable, "-c", USE], env=tool_env(**wrong_password),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert wrong.returncode != 0  # the server checks the password: auth is on

    env = teamstack(state, "env")
    assert env.returncode == 0, env.stderr
    assert exports(env.stdout) == printed
    pids = [p["pid"] for p in json.loads((state / "stack.json").read_text())["processes"]]
    assert pids and all(_alive(pid) for pid in pids)

    down = teamstack(state, "down")
    assert down.returncode == 0, down.stderr
    assert not state.exists()
    assert [pid for pid in pids if _alive(pid)] == []

    gone = teamstack(state, "env")
    assert gone.returncode != 0 and "Traceback" not in gone.stderr
    (line,) = [line for line in gone.stderr.splitlines() if line.startswith("error:")]
    assert f"no team stack in {state}" in line, line
