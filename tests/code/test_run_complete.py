"""What a model's run lacks of evaluate's part, against a real SQLite MLflow store: what
makes `epochline repro` and retrain run evaluate again (retrain/complete.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from epochline.retrain.complete import evaluation_missing
from epochline.tracking import store as tracking
from epochline.tracking.tags import TAG_BASELINE, TAG_CHANGES, TAG_DESCRIPTION

TESTED = {"accuracy": 0.89, "f1": 0.894231, "roc_auc": 0.953558, "confusion_matrix": [[1, 0]]}
DESCRIBED = "the description with its test metrics"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[MlflowClient, str]:
    """One store for the module (its schema takes seconds); each test its own run."""
    root = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("e", artifact_location=(root / "artifacts").as_uri())
    return client, experiment


@pytest.mark.parametrize(
    ("logged", "described", "missing"),
    [
        ({}, False, ["test_accuracy", "test_f1", "test_roc_auc", DESCRIBED]),  # train's part only
        (TESTED, False, [DESCRIBED]),
        ({"accuracy": 0.89, "roc_auc": 0.953558}, True, ["test_f1"]),
        (TESTED, True, []),  # evaluate ran against this run
    ],
)
def test_evaluation_missing_names_what_evaluate_did_not_log(
    store: tuple[MlflowClient, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    logged: dict[str, float],
    described: bool,
    missing: list[str],
) -> None:
    client, experiment = store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", client.tracking_uri)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports/metrics.json").write_text(json.dumps(TESTED))
    tags = {TAG_CHANGES: "lr=0.01", TAG_BASELINE: "1a2b3c4d"}
    run_id = client.create_run(experiment, tags=tags).info.run_id
    trained = tracking.TrainedModel(
        run_id, "lr=0.01", "models:/m-1", "d", "d", tracking.provenance(tags)
    )
    for name, value in logged.items():
        if isinstance(value, float):
            client.log_metric(run_id, f"test_{name}", value)
    client.log_metric(run_id, "val_accuracy", 0.9, step=1)  # train's: no test metric
    if described:
        scores = {k: v for k, v in TESTED.items() if isinstance(v, float)}
        client.set_tag(run_id, TAG_DESCRIPTION, tracking.describe(trained, scores))
    assert evaluation_missing(trained) == missing
