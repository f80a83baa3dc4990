"""`mlflow models serve --env-manager local` serves the logged model on raw rows."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import copy_project, run, tool_env

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def wait_until_up(url: str, server: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"server exited {server.returncode}: {server.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"server not up at {url} after {seconds}s")


def test_served_model_answers_like_evaluate(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project", {"train": {"epochs": 2}})
    run(["dvc", "repro"], project)
    model_uri = json.loads((project / "models/run.json").read_text())["model_uri"]
    port = free_port()
    env = tool_env(MLFLOW_TRACKING_URI=f"sqlite:///{project / 'mlflow.db'}")
    args = ["mlflow", "models", "serve", "-m", model_uri, "-h", "127.0.0.1", "-p", str(port)]
    server = subprocess.Popen(
        [*args, "--env-manager", "local"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/ping", server)
        test = pd.read_parquet(project / "data/split/test.parquet").drop(columns="label")
        body = {"dataframe_split": json.loads(test.to_json(orient="split", index=False))}
        answer = pd.DataFrame(post(f"http://127.0.0.1:{port}/invocations", body)["predictions"])
    finally:
        server.terminate()
        server.wait(timeout=30)
    evaluated = pd.read_parquet(project / "reports/test_predictions.parquet")
    assert answer["label"].tolist() == evaluated["label"].tolist()
    assert (answer["probability"] - evaluated["probability"]).abs().max() < 1e-12
