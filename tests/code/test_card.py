"""The model card from a real SQLite store, with no pipeline outputs in the workspace: a run
without test metrics, a seeds parent, a run with another data.max_categories, a registered
version's decision record, a run with no model; and the renderer's interval sentence."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from epochline.core.errors import UserError
from epochline.core.params import Params, load_params
from epochline.evaluation import card, intervals
from epochline.evaluation.baselines import LOGISTIC
from epochline.evaluation.intervals import Interval
from epochline.review.card import card_command
from epochline.tracking import store
from epochline.tracking.tags import (
    PREFIX,
    TAG_DATA_DIGEST,
    TAG_MODEL_URI,
    TAG_PARENT_RUN,
    TAG_SEEDS,
    Tag,
)

REPO = Path(__file__).resolve().parents[2]
MODEL = "card-test"
SEEDS_RECORD = "42: +0.0100, 43: +0.0200; held on every seed"


def _run(client: MlflowClient, experiment: str, params: dict[str, str], tags: dict[str, str],
         metrics: dict[str, float]) -> str:  # fmt: skip
    run = client.create_run(experiment, tags=tags)
    for key, value in params.items():
        client.log_param(run.info.run_id, key, value)
    for key, value in metrics.items():
        client.log_metric(run.info.run_id, key, value)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """A folder with the repo's params.yaml and a store of runs, by what each stands for."""
    root = tmp_path_factory.mktemp("card")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    flat = {k: str(v) for k, v in load_params(root / "params.yaml").flat().items()}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        experiment = store.connect(load_params().tracking)
        client = store.client()
        model = {TAG_MODEL_URI: "models:/m-none", TAG_DATA_DIGEST: "d" * 16}
        runs = {
            "bare": _run(client, experiment, flat, model, {}),
            "other": _run(client, experiment, flat | {"data.max_categories": "5"}, model, {}),
            "no_model": _run(client, experiment, flat, {}, {}),
            "parent": _run(client, experiment, {k: v for k, v in flat.items() if k != "train.seed"},
                           {TAG_SEEDS: "42,43"},
                           {f"test_accuracy_{s}": v for s, v in
                            (("mean", 0.85), ("std", 0.05), ("min", 0.8), ("max", 0.9))}),
        }  # fmt: skip
        for seed, accuracy in (("42", 0.9), ("43", 0.8)):
            tags = model | {TAG_PARENT_RUN: runs["parent"], TAG_MODEL_URI: f"models:/m-{seed}"}
            child = _run(client, experiment, flat | {"train.seed": seed}, tags,
                         {"test_accuracy": accuracy})  # fmt: skip
            runs[f"child{seed}"] = child
        client.create_registered_model(MODEL)
        client.create_model_version(MODEL, f"runs:/{runs['bare']}/model", runs["bare"])
        for key, value in ((Tag.DECISION, "promoted"), (Tag.SEEDS, SEEDS_RECORD)):
            client.set_model_version_tag(MODEL, "1", f"{PREFIX}{key}", value)
        yield root, runs


@pytest.fixture
def here(workspace: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    root, runs = workspace
    monkeypatch.chdir(root)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    return runs


def test_a_run_without_test_metrics_shows_a_dash(here: dict[str, str]) -> None:
    text = card_command(here["bare"], None)
    assert "accuracy **-**, ROC AUC **-**" in text
    assert "| accuracy | - | - |  |" in text
    assert "Slices could not be computed: the workspace has no data/split tables" in text
    assert f"rebuild: `epochline reproduce {here['bare']}`" in text


def test_a_seeds_parent_is_its_first_seeds_model(here: dict[str, str]) -> None:
    text = card_command(here["parent"], None)
    assert "- a seeds parent: run `" in text and f"(`{here['parent']}`), seeds 42,43" in text
    assert "over the seeds: accuracy mean 0.8500 ± 0.0500 (sd)" in text
    assert f"rebuild: `epochline reproduce {here['child42']}`" in text
    assert "model `models:/m-42`" in text
    assert "accuracy **0.9000**" in text  # the first seed's own test metric


def test_a_run_prepared_otherwise_says_why_it_has_no_slices(here: dict[str, str]) -> None:
    ours = load_params().data.max_categories
    text = card_command(here["other"], None)
    assert (
        "Slices could not be computed: the run's preprocessing (data.max_categories 5) is "
        f"not the workspace's ({ours})."
    ) in text


def test_a_registered_version_holds_its_seeds_record(here: dict[str, str]) -> None:
    text = card_command(f"models:/{MODEL}/1", None)
    record = text[text.index("## Decision record") :]
    assert "| decision | `promoted` |" in record
    assert f"| seeds | `{SEEDS_RECORD}` |" in record


@pytest.mark.parametrize("target", ["no_model", "models:/nope/7", "not-a-revision"])
def test_a_target_without_a_model_is_one_line(here: dict[str, str], target: str) -> None:
    with pytest.raises(UserError) as raised:
        card_command(here.get(target, target), None)
    message = str(raised.value)
    assert message.startswith("card: ") and "\n" not in message and "compare" not in message
    assert raised.value.exit_code == 2


def _card(rows: int) -> card.Card:
    settings = card.Settings.of(Params())
    ranges = {"accuracy": Interval(0.8, 0.95)}
    evaluation = card.Evaluation(rows, {"accuracy": 0.9}, ranges, settings.confidence,
                                 settings.resamples, {}, 0.5, "0.5", ())  # fmt: skip
    data = card.Data("synthetic", "d", (), (), None, {})
    training = card.Training({}, 1, 1, 32, [])
    return card.Card("m", "k", data, training, evaluation, None, "why", (), True)


def test_the_interval_sentence_names_the_bootstrap_that_drew_it() -> None:
    small = card.render(_card(200))
    assert "95% percentile bootstrap interval (2000 resamples of the test rows)" in small
    rows = intervals.MAX_ROWS + 1
    large = card.render(_card(rows))
    assert "percentile" not in large
    assert (
        f"95% m-out-of-n bootstrap interval (2000 resamples of {intervals.MAX_ROWS} of the test "
        f"rows, the spread rescaled by sqrt({intervals.MAX_ROWS} / {rows}))"
    ) in large


def test_metrics_never_logged_render_as_a_dash() -> None:
    empty = _card(0)
    unknown = replace(empty.evaluation, metrics={}, yardsticks={LOGISTIC: {"f1": 0.5}})
    text = card.render(replace(empty, evaluation=unknown))
    assert "accuracy **-**" in text and "| roc_auc | - |" in text
    assert "The logistic regression fitted on the same rows: accuracy -, ROC AUC -." in text
