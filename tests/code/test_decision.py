"""A retrain's decision: the rules, the one record, its text, and what it writes (tags on the
version and its run, drift metrics, the report) into a real SQLite MLflow store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from epochline.core.params import RetrainParams
from epochline.retrain import recording, report
from epochline.retrain.compare import Scores, decide, split_changes
from epochline.retrain.decision import Decision, Provenance, Versions
from epochline.retrain.drift import BatchDrift, FeatureDrift, LabelShift
from epochline.tracking.registry import Registry
from epochline.tracking.tags import KEPT, PROMOTED, RUN_TAG_PREFIX, Tag, tag_name

RULE = RetrainParams()  # accuracy, min_delta 0.01, min_metric 0.7, 95%, 2000 samples, seed 42


def _scores(y: np.ndarray, right: int) -> Scores:
    """Answers right on the first `right` rows."""
    label = np.where(np.arange(len(y)) < right, y, 1 - y)
    return Scores(probability=np.where(label == 1, 0.8, 0.2), label=label)


def test_a_champion_held_out_on_other_rows_is_kept_whatever_the_scores() -> None:
    y = np.random.default_rng(1).integers(0, 2, 400)
    better = decide(y, _scores(y, 390), _scores(y, 300), RULE)
    assert better.decision == PROMOTED
    elsewhere = decide(y, _scores(y, 390), _scores(y, 300), RULE, "split.seed 42 -> 7")
    assert elsewhere.decision == KEPT
    assert elsewhere.reason == (
        "not comparable: the champion was held out on other rows (split.seed 42 -> 7)"
    )
    # The numbers are still those of the comparison, for the record.
    assert replace(elsewhere, decision=PROMOTED, reason=better.reason) == better


def test_split_changes_name_each_changed_split_key_only() -> None:
    then = {"split.test_size": "0.2", "split.val_size": "0.1", "split.seed": "42",
            "data.id_column": "None", "data.label_column": "label",
            "data.positive_class": "None", "train.lr": "0.01"}  # fmt: skip
    assert split_changes(then, then | {"train.lr": "0.1"}) is None
    now = then | {"split.seed": "7", "data.label_column": "y", "train.lr": "0.1"}
    assert split_changes(then, now) == "split.seed 42 -> 7; data.label_column label -> y"


def _feature(name: str, psi: float, drifted: bool, unseen: list[str] | None = None) -> FeatureDrift:
    kind, test = ("categorical", "chi2") if unseen is not None else ("numeric", "ks")
    return FeatureDrift(
        feature=name, kind=kind, psi=psi, test=test, statistic=0.25, p_value=0.0012,
        new_categories=unseen or [], missing_reference=0.0, missing_new=0.05, drifted=drifted,
    )  # fmt: skip


SHIFT = LabelShift(
    reference_positive_rate=0.5,
    new_positive_rate=0.25,
    batches=[
        {"batch": "batch-0001.csv", "rows": 100, "positive_rate": 0.5, "one_class": None},
        {"batch": "batch-0002.csv", "rows": 100, "positive_rate": 0.0, "one_class": "no"},
    ],
)
DRIFT = BatchDrift(
    batches=["batch-0001.csv", "batch-0002.csv"],
    new_batches=["batch-0002.csv"],
    new_rows=200,
    reference_rows=560,
    features=[_feature("x0", 0.05, False), _feature("island (m²)", 0.4, True, ["Atlantis"])],
    label=SHIFT,
)
PROVENANCE = Provenance(
    registered_model="epochline-classifier", run_id="abc123", run_name="lr=0.02",
    runs_link="http://mlflow/#/experiments/1", data_digest="d" * 16, git_commit="c" * 40,
)  # fmt: skip
METRICS = {"accuracy": 0.9, "roc_auc": 0.95, "confusion_matrix": [[90, 10], [10, 90]]}


def _decision(
    versions: Versions, with_champion: bool = True, drift: BatchDrift = DRIFT
) -> Decision:
    y = np.random.default_rng(1).integers(0, 2, 400)
    comparison = decide(y, _scores(y, 390), _scores(y, 300) if with_champion else None, RULE)
    return Decision("2026-01-02T03:04:05+00:00", comparison, drift, versions, PROVENANCE, METRICS)


PROMOTED_V2 = _decision(Versions("2", "1"))


def test_the_record_as_json_keeps_the_keys_its_readers_know() -> None:
    data = PROMOTED_V2.as_json()
    assert list(data) == [
        "finished", "registered_model", "run_id", "run_name", "runs_link", "test_metrics",
        "challenger_version", "champion_version", "champion_after", "comparison", "drift",
        "batches", "data_digest", "git_commit",
    ]  # fmt: skip
    assert (data["challenger_version"], data["champion_version"], data["champion_after"]) == (
        "2", "1", "2",
    )  # fmt: skip
    assert list(data["comparison"]) == [
        "metric", "challenger", "champion", "delta", "ci_low", "ci_high", "p_value", "n_rows",
        "decision", "reason",
    ]  # fmt: skip
    assert list(data["drift"]) == [
        "batches", "new_batches", "new_rows", "reference_rows", "features", "label",
    ]  # fmt: skip
    assert data["batches"] == DRIFT.batches and data["drift"]["label"] == SHIFT
    json.dumps(data)  # JSON as it is: no numpy scalars, no dataclasses


def test_no_new_rows_means_no_reference_and_nothing_measured() -> None:
    nothing = BatchDrift.nothing_new(["batch-0001.csv"])
    assert nothing.as_json() == {
        "batches": ["batch-0001.csv"], "new_batches": [], "new_rows": 0, "features": [],
        "label": None,
    }  # fmt: skip
    assert nothing.drifted == []


def test_kept_leaves_the_champion_and_first_promotion_has_none_before() -> None:
    kept = replace(PROMOTED_V2, comparison=replace(PROMOTED_V2.comparison, decision=KEPT))
    assert kept.champion_after == "1" and kept.status == KEPT
    first = _decision(Versions("1", None), with_champion=False)
    assert first.champion_after == "1" and first.comparison.champion is None


def test_tags_carry_the_decision_last_and_drift_metrics_are_mlflow_names() -> None:
    tags = PROMOTED_V2.tags()
    assert list(tags)[-1] == Tag.DECISION and tags[Tag.DECISION] == PROMOTED
    assert tags[Tag.BATCHES] == "batch-0001.csv,batch-0002.csv"
    assert tags[Tag.CHAMPION_VERSION] == "1"
    assert PROMOTED_V2.drift_metrics() == [
        ("drift_psi_x0", 0.05), ("drift_ks_x0", 0.25), ("drift_missing_x0", 0.05),
        ("drift_psi_island _m²_", 0.4), ("drift_chi2_island _m²_", 0.25),
        ("drift_missing_island _m²_", 0.05), ("drift_positive_rate", 0.25),
    ]  # fmt: skip


def test_summary_says_decision_numbers_drift_label_and_where_to_look() -> None:
    c = PROMOTED_V2.comparison
    assert report.summary(PROMOTED_V2) == (
        f"retrain: PROMOTED challenger v2: accuracy {c.challenger:.4f} vs champion v1 "
        f"{c.champion:.4f}, delta {c.delta:+.4f} [{c.ci_low:+.4f}, {c.ci_high:+.4f}], "
        f"p={c.p_value:.3f}\n"
        f"  reason: {c.reason}\n"
        "  drift in island (m²); champion is now v2\n"
        "  label: positive rate 50.0% in training rows, 25.0% in new rows; "
        "ONE CLASS ONLY in batch-0002.csv ('no')\n"
        "  run 'lr=0.02' (abc123)\n"
        "  test (200 rows): accuracy 0.9000  roc_auc 0.9500\n"
        "  look: reports/retrain/report.md; runs: http://mlflow/#/experiments/1; "
        "Model registry -> epochline-classifier"
    )
    first = report.summary(_decision(Versions("1", None), False, BatchDrift.nothing_new([])))
    assert first.startswith(
        f"retrain: PROMOTED challenger v1: accuracy {c.challenger:.4f} (no comparable champion)"
    )
    assert "no feature drifted; champion is now v1\n  run" in first


def test_markdown_has_the_comparison_the_drift_table_and_each_batch() -> None:
    text = report.markdown(PROMOTED_V2)
    assert text.startswith("# Retrain 2026-01-02T03:04:05+00:00: promoted\n\n- challenger: v2 ")
    assert "- champion before: v1\n- champion after: v2\n" in text
    assert f"| delta | {PROMOTED_V2.comparison.delta:+.4f} |" in text
    assert "## Drift: 200 new rows in 1 batch(es)" in text
    assert (
        "| island (m²) | categorical | 0.4000 | chi2 | 0.2500 | 0.0012 | 0.0% → 5.0% "
        "| Atlantis | yes |"
    ) in text
    assert "| x0 | numeric | 0.0500 | ks | 0.2500 | 0.0012 | 0.0% → 5.0% |  |  |" in text
    assert "- batch-0002.csv: 100 rows, positive rate 0.0% (one class only: 'no')" in text
    assert report.commit_message(PROMOTED_V2).startswith("retrain: promoted v2 (accuracy 0.")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MlflowClient, str]]:
    root = tmp_path_factory.mktemp("store")
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.create_experiment("e", artifact_location=(root / "artifacts").as_uri())
    yield client, experiment


def test_record_writes_version_tags_run_tags_metrics_and_the_report(
    store: tuple[MlflowClient, str], tmp_path: Path
) -> None:
    client, experiment = store
    run_id = client.create_run(experiment).info.run_id
    registry = Registry(client, "recorded")
    for n in (1, 2):
        registry.register(f"file:///models/{n}", run_id, f"digest-{n}")
    decision = replace(PROMOTED_V2, provenance=replace(PROVENANCE, run_id=run_id))

    recording.record(registry, decision, tmp_path)

    version = client.get_model_version("recorded", "2").tags
    assert version[tag_name(Tag.DECISION)] == PROMOTED
    assert version[tag_name(Tag.CHAMPION_VALUE)] == str(decision.comparison.champion)
    assert version[tag_name(Tag.DATA_DIGEST)] == "d" * 16
    assert tag_name(Tag.DECISION) not in client.get_model_version("recorded", "1").tags
    run = client.get_run(run_id).data
    assert run.tags[tag_name(Tag.DECISION, RUN_TAG_PREFIX)] == PROMOTED
    assert run.tags["epochline.retrain.reason"] == decision.comparison.reason
    assert run.metrics == dict(decision.drift_metrics())
    artifacts = {a.path for a in client.list_artifacts(run_id, "retrain")}
    assert artifacts == {"retrain/report.json", "retrain/report.md"}
    logged = json.loads(Path(client.download_artifacts(run_id, "retrain/report.json")).read_text())
    assert logged == decision.as_json() == json.loads((tmp_path / "report.json").read_text())
    assert (tmp_path / "report.md").read_text() == report.markdown(decision)
