"""`mlflow models serve --env-manager local` serves the logged model on raw rows."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from devtools.servers import serving
from tests.conftest import copy_project, run, tool_env, trained_run

pytestmark = pytest.mark.slow


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_served_model_answers_like_evaluate(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project", {"train": {"epochs": 2}})
    run(["dvc", "repro"], project)
    model_uri = trained_run(project).data.tags["epochline.model_uri"]
    env = tool_env(MLFLOW_TRACKING_URI=f"sqlite:///{project / 'mlflow.db'}")
    args = ["mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local"]
    with serving([*args, "-h", "127.0.0.1", "-p"], project, env, "/ping") as base:
        test = pd.read_parquet(project / "data/split/test.parquet").drop(columns="label")
        body = {"dataframe_split": json.loads(test.to_json(orient="split", index=False))}
        answer = pd.DataFrame(post(f"{base}/invocations", body)["predictions"])
    evaluated = pd.read_parquet(project / "reports/test_predictions.parquet")
    assert answer["label"].tolist() == evaluated["label"].tolist()
    assert (answer["probability"] - evaluated["probability"]).abs().max() < 1e-12
