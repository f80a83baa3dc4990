"""The real `dvc repro` in a temporary git repo, checked through the real MLflow store.

One project serves the module; a test that changes its workspace puts it back, so the tests
pass in any order (make test-random).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch
from sklearn import metrics as skm

from tests.conftest import SMALL, copy_project, run, store, trained_run, workspace_restored

pytestmark = pytest.mark.slow

EPOCHS = SMALL["train"]["epochs"]
PER_EPOCH = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")
TEST_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")


def ran_stages(output: str) -> list[str]:
    return re.findall(r"Running stage '(\w+)'", output)


def baseline(project: Path) -> mlflow.entities.Run:
    """The module's `dvc repro` run: the first, whatever experiments other tests added."""
    return runs(project)[0]


def runs(project: Path) -> list[mlflow.entities.Run]:
    client = store(project)
    experiment = client.get_experiment_by_name("epochline")
    assert experiment is not None, "experiment 'epochline' was not created"
    return client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])


@pytest.fixture(scope="module")
def repro(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    project = copy_project(tmp_path_factory.mktemp("e2e") / "project")
    done = run(["dvc", "repro"], project)
    return project, done.stdout + done.stderr


@pytest.fixture(scope="module")
def lr_check(
    repro: tuple[Path, str],
) -> tuple[list[mlflow.entities.Run], subprocess.CompletedProcess[str]]:
    """`dvc exp run -n lr-check -S train.lr=0.01` in the workspace: the runs before, its output."""
    project, _ = repro
    before = runs(project)
    with workspace_restored(project):
        done = run(["dvc", "exp", "run", "-n", "lr-check", "-S", "train.lr=0.01"], project)
    return before, done


def test_repro_runs_every_stage_in_order(repro: tuple[Path, str]) -> None:
    _, output = repro
    assert ran_stages(output) == ["load", "normalize", "split", "train", "evaluate"]


def test_one_finished_run_with_metrics_per_epoch_and_test_metrics(repro: tuple[Path, str]) -> None:
    project, _ = repro
    # Experiments other tests ran add runs of their own; the repro made this one alone.
    (only,) = [r for r in runs(project) if not r.data.tags.get("epochline.dvc_exp_name")]
    assert only.info.run_id == baseline(project).info.run_id
    assert only.info.status == "FINISHED"
    client = store(project)
    for name in PER_EPOCH:
        history = client.get_metric_history(only.info.run_id, name)
        assert [m.step for m in history] == list(range(1, EPOCHS + 1)), name
    for name in TEST_METRICS:
        assert f"test_{name}" in only.data.metrics
    assert only.data.metrics["test_accuracy"] > 0.6


def test_run_records_params_tags_datasets_and_plots(repro: tuple[Path, str]) -> None:
    project, _ = repro
    only = baseline(project)
    params = only.data.params
    assert params["train.epochs"] == str(EPOCHS)
    assert params["data.n_rows"] == str(SMALL["data"]["n_rows"])
    assert {"train.lr", "split.test_size", "evaluate.threshold", "tracking.experiment_name"} <= set(
        params
    )
    head = run(["git", "rev-parse", "HEAD"], project).stdout.strip()
    assert only.data.tags["epochline.git_commit"] == head
    # A repro rewrites dvc.lock, but the code and config are as committed: not dirty.
    assert only.data.tags["epochline.git_dirty"] == "false"
    assert re.fullmatch(r"[0-9a-f]{16}", only.data.tags["epochline.data_digest"])
    contexts = {
        d.dataset.name: {t.value for t in d.tags if t.key == "mlflow.data.context"}
        for d in only.inputs.dataset_inputs
    }
    assert contexts == {"train": {"training"}, "val": {"validation"}, "test": {"testing"}}
    for logged in only.inputs.dataset_inputs:  # from the Parquet footer, a sample, the bytes
        dataset, path = logged.dataset, project / f"data/split/{logged.dataset.name}.parquet"
        table = pd.read_parquet(path)
        assert json.loads(dataset.profile)["num_rows"] == len(table)
        assert dataset.digest == hashlib.sha256(path.read_bytes()).hexdigest()[:8]
        columns = [c["name"] for c in json.loads(dataset.schema)["mlflow_colspec"]]
        assert columns == list(table.columns)
    assert only.data.tags["epochline.model_uri"].startswith("models:/")
    artifacts = {a.path for a in store(project).list_artifacts(only.info.run_id, "plots")}
    assert artifacts == {"plots/confusion_matrix.png", "plots/roc_curve.png"}
    # Artifacts are anchored at the repo root, never in ./mlruns (which flips `mlflow ui`).
    assert (project / "mlartifacts").is_dir() and not (project / "mlruns").exists()


SCORE = """
import sys, mlflow, pandas as pd
rows = pd.read_parquet("data/split/test.parquet").drop(columns=["label"])
mlflow.pyfunc.load_model(sys.argv[1]).predict(rows).to_parquet(sys.argv[2])
"""


def test_logged_model_predicts_raw_rows_exactly_like_evaluate(repro: tuple[Path, str]) -> None:
    project, _ = repro
    model_uri = trained_run(project).data.tags["epochline.model_uri"]
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model(model_uri)
    evaluated = pd.read_parquet(project / "reports/test_predictions.parquet")
    # Scored in a process of its own, as a user's script or a server loads the model: this
    # one imported torch before epochline, so its kernels are not the portable ones.
    out = project.parent / "pyfunc-predictions.parquet"
    run(["python", "-c", SCORE, model_uri, str(out)], project,
        MLFLOW_TRACKING_URI=f"sqlite:///{project / 'mlflow.db'}")  # fmt: skip
    predicted = pd.read_parquet(out)
    pd.testing.assert_frame_equal(predicted, evaluated, check_exact=True)
    assert set(predicted["label"]) <= {0, 1}
    assert model.metadata.get_input_schema().input_names() == [f"x{i}" for i in range(10)]


def test_metrics_json_is_what_scikit_learn_computes_from_the_predictions(
    repro: tuple[Path, str],
) -> None:
    project, _ = repro
    y = pd.read_parquet(project / "data/split/test.parquet")["label"].to_numpy()
    predicted = pd.read_parquet(project / "reports/test_predictions.parquet")
    assert len(predicted) == len(y)
    prob, label = predicted["probability"].to_numpy(), predicted["label"].to_numpy()
    expected = {
        "accuracy": skm.accuracy_score(y, label),
        "precision": skm.precision_score(y, label),
        "recall": skm.recall_score(y, label),
        "f1": skm.f1_score(y, label),
        "roc_auc": skm.roc_auc_score(y, prob),
        "log_loss": skm.log_loss(y, prob),
    }
    reported = json.loads((project / "reports/metrics.json").read_text())
    for name, value in expected.items():  # metrics.json holds 6 decimals
        assert reported[name] == pytest.approx(value, abs=5e-7), name
    assert reported["confusion_matrix"] == skm.confusion_matrix(y, label).tolist()
    # The run holds the same numbers, unrounded (a repeat of train reuses the run).
    logged = trained_run(project).data.metrics
    for name, value in expected.items():
        assert logged[f"test_{name}"] == pytest.approx(value, rel=1e-12, abs=1e-12), name


def test_dvc_metrics_and_plots_are_readable(repro: tuple[Path, str]) -> None:
    project, _ = repro
    shown = run(["dvc", "metrics", "show", "--json"], project).stdout
    assert '"accuracy"' in shown and '"roc_auc"' in shown
    run(["dvc", "plots", "show", "--out", str(project / "plots-out")], project)
    assert (project / "plots-out" / "index.html").exists()


def test_repro_with_nothing_changed_reruns_nothing(repro: tuple[Path, str]) -> None:
    project, _ = repro
    before = len(runs(project))
    done = run(["dvc", "repro"], project)
    assert ran_stages(done.stdout) == []
    assert len(runs(project)) == before


def test_retraining_the_same_data_gives_identical_weights_and_metrics(
    repro: tuple[Path, str],
) -> None:
    project, _ = repro
    weights = torch.load(project / "models/model.pt", weights_only=True)["state_dict"]
    metrics = (project / "reports/metrics.json").read_text()
    done = run(["dvc", "repro", "--force", "--single-item", "train"], project)
    run(["dvc", "repro"], project)
    assert ran_stages(done.stdout) == ["train"]
    again = torch.load(project / "models/model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(weights[name], again[name]) for name in weights)
    assert (project / "reports/metrics.json").read_text() == metrics


def test_bad_batch_fails_with_one_line_and_leaves_runs_untouched(
    repro: tuple[Path, str],
) -> None:
    project, _ = repro
    before = [(r.info.run_id, r.info.status) for r in runs(project)]
    bad = project / "data/incoming/batch-bad.csv"
    bad.write_text("x0,x1\n1.0,2.0\n")
    try:
        done = run(["dvc", "repro"], project, check=False)
    finally:
        bad.unlink()
        run(["dvc", "repro"], project)  # DVC removed load's outputs before it failed
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "batch-bad.csv" in errors[0], done.stderr
    assert [(r.info.run_id, r.info.status) for r in runs(project)] == before


def test_exp_run_reruns_only_train_and_evaluate_and_logs_a_second_run(
    repro: tuple[Path, str],
    lr_check: tuple[list[mlflow.entities.Run], subprocess.CompletedProcess[str]],
) -> None:
    project, _ = repro
    before, done = lr_check
    assert ran_stages(done.stdout) == ["train", "evaluate"]
    (new,) = [r for r in runs(project) if r.data.tags.get("epochline.dvc_exp_name") == "lr-check"]
    assert new.info.run_id not in {r.info.run_id for r in before}
    # Named after what differs from the baseline; DVC's experiment name stays a tag.
    assert new.info.run_name == "lr=0.01"
    assert new.data.tags["epochline.dvc_exp_name"] == "lr-check"
    assert "lr=0.01 (DVC experiment lr-check" in new.data.tags["mlflow.note.content"]
    assert new.data.params["train.lr"] == "0.01"
    assert "test_accuracy" in new.data.metrics


def test_temp_experiment_logs_into_the_repo_root_store(repro: tuple[Path, str]) -> None:
    project, _ = repro
    before = len(runs(project))
    run(["dvc", "exp", "run", "--temp", "-n", "temp-check", "-S", "train.lr=0.03"], project)
    after = runs(project)
    assert len(after) == before + 1
    assert after[-1].info.run_name == "lr=0.03"
    assert after[-1].data.tags["epochline.dvc_exp_name"] == "temp-check"
    assert after[-1].info.status == "FINISHED"
    assert "test_accuracy" in after[-1].data.metrics
    assert after[-1].info.artifact_uri.startswith((project / "mlartifacts").as_uri())


def test_exp_show_on_a_120_column_terminal_shows_test_metrics_then_lr(
    repro: tuple[Path, str],
    lr_check: tuple[list[mlflow.entities.Run], subprocess.CompletedProcess[str]],
) -> None:
    project, _ = repro  # lr_check: an experiment whose train.lr differs, for --only-changed
    # In a terminal DVC pages the full-width table; a 120-column pager shows its first 120.
    shown = run(["dvc", "exp", "show", "--no-pager"], project, COLUMNS="1000").stdout
    header = next(line for line in shown.splitlines() if "Experiment" in line)
    for column in TEST_METRICS:
        assert column in header[:120], header[:120]
    # The network's metrics come first, then the params, the ones people sweep first;
    # the yardsticks (reports/verdict.json) are not DVC metrics and take no column.
    assert header.index("log_loss") < header.index("pr_auc") < header.index("train.lr")
    assert "baseline" not in header
    changed = run(["dvc", "exp", "show", "--only-changed", "--no-pager"], project, COLUMNS="1000")
    assert "train.lr" in changed.stdout and "data.n_rows" not in changed.stdout


def test_a_queued_sweep_with_two_workers_logs_one_named_run_each(repro: tuple[Path, str]) -> None:
    project, _ = repro
    before = {r.info.run_id for r in runs(project)}
    run(["dvc", "exp", "run", "--queue", "-S", "train.lr=0.005,0.05"], project)
    try:
        run(["dvc", "queue", "start", "-j", "2"], project)
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline:
            status = run(["dvc", "queue", "status"], project).stdout
            if not re.search(r"\b(Queued|Running)\b", status):
                break
            time.sleep(3)
    finally:
        run(["dvc", "queue", "stop"], project, check=False)
        # The queue's records add State and Executor columns to `dvc exp show` (the
        # experiments themselves stay): gone, the 120-column test sees what it expects.
        run(["dvc", "queue", "remove", "--all"], project, check=False)
    tasks = [line for line in status.splitlines()[1:] if line.strip() and "Worker" not in line]
    assert len(tasks) == 2 and all("Success" in line for line in tasks), status
    new = [r for r in runs(project) if r.info.run_id not in before]
    assert sorted(r.info.run_name for r in new) == ["lr=0.005", "lr=0.05"]
    assert all(r.info.status == "FINISHED" and "test_accuracy" in r.data.metrics for r in new)
    # The README's way to find the best one.
    best = run(
        ["dvc", "exp", "show", "--csv", "--sort-by", "accuracy", "--sort-order", "desc"], project
    ).stdout
    assert "0.005" in best and "0.05" in best
