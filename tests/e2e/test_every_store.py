"""Every run complete in every store: what train and evaluate log to MLflow is never skipped
because DVC has their outputs already (its run cache, a `dvc pull`, a run against another
store). One project: a local repro first, which fills DVC's run cache, then fresh stores;
each test leaves the outputs as the committed params make them, so any order works."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from bench.project import set_params
from devtools.servers import serving
from tests.conftest import copy_project, run, tool_env
from tests.e2e.test_pipeline import EPOCHS, PER_EPOCH, TEST_METRICS, ran_stages

pytestmark = pytest.mark.slow

RUN_CACHE_HIT = "is cached - skipping run"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = copy_project(tmp_path_factory.mktemp("stores") / "project")
    run(["epochline", "repro"], project)  # the local store; DVC's run cache now knows both
    return project


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """A fresh, real `mlflow server` on 127.0.0.1 (its own SQLite store and artifact folder)."""
    args = [
        "mlflow", "server", "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
        "--artifacts-destination", str(tmp_path / "server-artifacts"), "--workers", "1",
        "--host", "127.0.0.1", "--port",
    ]  # fmt: skip
    with serving(args, tmp_path, tool_env(), "/health") as base:
        yield base


def repro(args: list[str], project: Path, uri: str) -> str:
    done = run(args, project, MLFLOW_TRACKING_URI=uri)
    return done.stdout + done.stderr


def model_run(uri: str, project: Path) -> mlflow.entities.Run:
    """The one run in the store at `uri` that holds the model models/model.json describes."""
    info = json.loads((project / "models/model.json").read_text())
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("epochline")
    assert experiment is not None, f"no experiment 'epochline' in {uri}"
    found = [
        r
        for r in client.search_runs([experiment.experiment_id])
        if r.data.tags.get("epochline.model_digest") == info["model_digest"]
    ]
    assert len(found) == 1, f"{len(found)} runs in {uri} hold model {info['model_digest']}"
    return found[0]


def assert_complete(uri: str, project: Path) -> None:
    """The run holds everything the pipeline logs: params, datasets, every epoch, the
    model, and evaluate's part: the test metrics of reports/metrics.json, the plots and
    the description with the metrics."""
    found = model_run(uri, project)
    client, run_id = MlflowClient(uri), found.info.run_id
    assert found.info.status == "FINISHED"
    assert found.data.params["train.epochs"] == str(EPOCHS)
    assert len(found.inputs.dataset_inputs) == 3
    for name in PER_EPOCH:
        steps = [m.step for m in client.get_metric_history(run_id, name)]
        assert steps == list(range(1, EPOCHS + 1)), name
    model_id = found.data.tags["epochline.model_uri"].removeprefix("models:/")
    assert client.get_logged_model(model_id).source_run_id == run_id
    tested = json.loads((project / "reports/metrics.json").read_text())
    for name in TEST_METRICS:
        assert found.data.metrics[f"test_{name}"] == pytest.approx(tested[name], abs=1e-6)
    plots = {a.path for a in client.list_artifacts(run_id, "plots")}
    assert plots == {"plots/confusion_matrix.png", "plots/roc_curve.png"}
    description = found.data.tags["mlflow.note.content"]
    assert description.startswith(f"accuracy {tested['accuracy']:.3f} roc_auc "), description


def test_run_cache_never_stands_in_for_train_or_evaluate(project: Path, tmp_path: Path) -> None:
    """Back to params whose results DVC's run cache holds, against a fresh store: plain
    `dvc repro` runs train and evaluate, which log the whole run there."""
    set_params(project, {"train": {"lr": 0.02}})
    local = f"sqlite:///{project / 'mlflow.db'}"
    assert ran_stages(repro(["dvc", "repro"], project, local)) == ["train", "evaluate"]
    run(["git", "checkout", "--", "params.yaml"], project)
    fresh = f"sqlite:///{tmp_path / 'second.db'}"
    output = repro(["dvc", "repro"], project, fresh)
    assert RUN_CACHE_HIT not in output
    assert ran_stages(output) == ["train", "evaluate"]
    assert_complete(fresh, project)
    # Nothing changed: nothing runs, and the store's run needs nothing more.
    assert ran_stages(repro(["epochline", "repro"], project, fresh)) == []
    assert ran_stages(repro(["dvc", "repro"], project, fresh)) == []


def test_a_fresh_server_gets_the_whole_run_of_outputs_dvc_has(project: Path, server: str) -> None:
    """Outputs up to date (as `dvc pull` leaves them), a store that never saw them."""
    output = repro(["epochline", "repro"], project, server)
    assert "training it again against this store" in output
    assert ran_stages(output) == ["train", "evaluate"]
    assert_complete(server, project)


def test_a_run_that_lacks_only_evaluates_part_is_completed(project: Path, tmp_path: Path) -> None:
    """train logged the run in this store and evaluate did not run (as when DVC finds its
    inputs unchanged, the same bytes as before): retrain (and repro) run evaluate again."""
    fresh = f"sqlite:///{tmp_path / 'third.db'}"
    train_only = ["dvc", "repro", "--force", "--single-item", "train"]
    assert ran_stages(repro(train_only, project, fresh)) == ["train"]
    assert "test_accuracy" not in model_run(fresh, project).data.metrics
    output = repro(["epochline", "retrain"], project, fresh)
    assert "evaluating it again" in output
    assert ran_stages(output) == ["evaluate"]
    assert_complete(fresh, project)
