"""What evaluate scores is what is served: the logged model, bit for bit, over pyfunc in a
fresh process and over HTTP (`mlflow models serve --env-manager local`) on raw rows."""

from __future__ import annotations

import hashlib
import json
import shutil
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import torch

from devtools.servers import serving
from epochline.serving import model_code
from tests.conftest import copy_project, run, store, tool_env, trained_run

pytestmark = pytest.mark.slow

# A process that never imported epochline: the model sets its own CPU numerics (model_code).
PYFUNC = """
import sys
import mlflow
import pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
rows = pd.read_parquet("data/split/test.parquet")
model.predict(rows[model.metadata.get_input_schema().input_names()]).to_parquet(sys.argv[2])
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = copy_project(tmp_path_factory.mktemp("serving") / "project", {"train": {"epochs": 2}})
    run(["dvc", "repro"], project)
    return project


def model_uri(project: Path) -> str:
    return str(trained_run(project).data.tags["epochline.model_uri"])


def served(project: Path, tmp_path: Path) -> pd.DataFrame:
    """The logged model's answers on the raw test rows, loaded by MLflow in a new process."""
    out = tmp_path / "served.parquet"
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}"}
    run(["python", "-c", PYFUNC, model_uri(project), str(out)], project, **env)
    return pd.read_parquet(out)


def evaluated(project: Path) -> pd.DataFrame:
    return pd.read_parquet(project / "reports/test_predictions.parquet")


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_evaluate_answers_bit_for_bit_as_the_logged_model(project: Path, tmp_path: Path) -> None:
    tags = trained_run(project).data.tags
    code = (Path(model_code.__file__ or "")).read_bytes()
    assert tags["epochline.model_code"] == hashlib.sha256(code).hexdigest()
    pd.testing.assert_frame_equal(evaluated(project), served(project, tmp_path), check_exact=True)


def _evaluate_alone(project: Path) -> str:
    return run(["python", "-m", "epochline.stages.evaluate"], project).stderr


def test_a_checkpoint_other_than_the_logged_one_is_not_what_evaluate_scores(
    project: Path, tmp_path: Path
) -> None:
    checkpoint = project / "models/model.pt"
    shutil.copy2(checkpoint, tmp_path / "model.pt")
    try:
        data = torch.load(checkpoint, weights_only=True)
        data["state_dict"]["out.bias"] += 3.0  # another model, where evaluate reads one
        torch.save(data, checkpoint)
        rows = pd.read_parquet(project / "data/split/test.parquet")
        other = model_code.answer(data["state_dict"], data["config"], rows)
        assert not other["probability"].equals(served(project, tmp_path)["probability"])
        assert "scoring the logged model" in _evaluate_alone(project)
        pd.testing.assert_frame_equal(
            evaluated(project), served(project, tmp_path), check_exact=True
        )
    finally:
        shutil.copy2(tmp_path / "model.pt", checkpoint)


def test_serving_code_other_than_the_logged_one_loads_the_logged_model(
    project: Path, tmp_path: Path
) -> None:
    client, run_id = store(project), trained_run(project).info.run_id
    logged = client.get_run(run_id).data.tags["epochline.model_code"]
    client.set_tag(run_id, "epochline.model_code", "0" * 64)  # as if logged by older code
    try:
        assert "scoring the logged model" in _evaluate_alone(project)
        pd.testing.assert_frame_equal(
            evaluated(project), served(project, tmp_path), check_exact=True
        )
    finally:
        client.set_tag(run_id, "epochline.model_code", logged)


def test_served_model_answers_like_evaluate(project: Path) -> None:
    env = tool_env(MLFLOW_TRACKING_URI=f"sqlite:///{project / 'mlflow.db'}")
    args = ["mlflow", "models", "serve", "-m", model_uri(project), "--env-manager", "local"]
    with serving([*args, "-h", "127.0.0.1", "-p"], project, env, "/ping") as base:
        test = pd.read_parquet(project / "data/split/test.parquet").drop(columns="label")
        body = {"dataframe_split": json.loads(test.to_json(orient="split", index=False))}
        answer = pd.DataFrame(post(f"{base}/invocations", body)["predictions"])
    assert answer["label"].tolist() == evaluated(project)["label"].tolist()
    assert (answer["probability"] - evaluated(project)["probability"]).abs().max() < 1e-12
