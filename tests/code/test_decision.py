"""A retrain's decision: the rules (in each metric's direction, the refusals evaluate's
findings bring), the one record, its text, and what it writes (tags on the version and its
run, drift metrics, the report) into a real SQLite MLflow store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from epochline.core.params import RetrainParams
from epochline.evaluation.metrics import never_predicted
from epochline.retrain import recording, report
from epochline.retrain.compare import Comparison, Findings, Scores, decide, split_changes
from epochline.retrain.decision import Decision, Provenance, Versions
from epochline.retrain.drift import BatchDrift, FeatureDrift, LabelShift
from epochline.tracking.registry import Registry
from epochline.tracking.tags import KEPT, PROMOTED, RUN_TAG_PREFIX, Tag, tag_name

RULE = RetrainParams()  # accuracy, min_delta 0.01, min_metric 0.7, 95%, 2000 samples, seed 42


def _scores(y: np.ndarray, right: int) -> Scores:
    """Answers right on the first `right` rows."""
    label = np.where(np.arange(len(y)) < right, y, 1 - y)
    return Scores(probability=np.where(label == 1, 0.8, 0.2), label=label)


def _rows() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 2, 400)


# _scores(y, 390) against _scores(y, 300): accuracy 0.9750 vs 0.7500, log_loss (each row
# -log 0.8 or -log 0.2) 0.2578 vs 0.5697.
LOG_LOSS = RetrainParams(metric="log_loss")  # lower is better; min_metric 0.7 is a ceiling
NOTE = " (delta: the champion's log_loss - the challenger's; lower is better)"


def _interval(c: Comparison) -> str:
    return f"95% interval [{c.ci_low:+.4f}, {c.ci_high:+.4f}]"


def test_a_lower_log_loss_is_better_and_its_gain_lies_above_0() -> None:
    y = _rows()
    result = decide(y, _scores(y, 390), _scores(y, 300), LOG_LOSS)
    assert result.challenger == pytest.approx(0.2578, abs=1e-4)
    assert result.champion == pytest.approx(0.5697, abs=1e-4)
    assert result.champion is not None
    assert result.delta == pytest.approx(result.champion - result.challenger)
    assert result.ci_low is not None and result.ci_low > 0 and result.p_value == 0
    assert result.decision == PROMOTED
    assert result.reason == (
        f"better: delta {result.delta:+.4f} > retrain.min_delta 0.01{NOTE}; "
        f"{_interval(result)} excludes 0; log_loss 0.2578 <= ceiling 0.7"
    )


def test_a_higher_log_loss_is_worse_and_kept() -> None:
    y = _rows()
    result = decide(y, _scores(y, 300), _scores(y, 390), LOG_LOSS)
    assert result.delta == pytest.approx(0.2578 - 0.5697, abs=1e-4)
    assert result.ci_high is not None and result.ci_high < 0 and result.p_value == 1
    assert result.decision == KEPT
    # Under the 0.7 ceiling, so the reason names only the delta and the interval.
    assert result.reason == (
        f"worse: delta {result.delta:+.4f} is not above retrain.min_delta 0.01{NOTE}; "
        f"{_interval(result)} is below 0: the challenger is worse"
    )


@pytest.mark.parametrize(
    ("ceiling", "decision", "check"),
    [(0.3, PROMOTED, "log_loss 0.2578 <= ceiling 0.3"),
     (0.2, KEPT, "log_loss 0.2578 is above the ceiling retrain.min_metric 0.2 (for log_loss, "
                 "at most)")],
)  # fmt: skip
def test_min_metric_is_a_ceiling_for_log_loss(ceiling: float, decision: str, check: str) -> None:
    y = _rows()
    rule = RetrainParams(metric="log_loss", min_metric=ceiling)
    result = decide(y, _scores(y, 390), _scores(y, 300), rule)
    assert result.decision == decision
    assert result.reason.endswith(check)
    assert result.reason.startswith("better: " if decision == PROMOTED else "not better enough: ")
    first = decide(y, _scores(y, 390), None, rule)
    assert first.decision == decision
    word = "passes" if decision == PROMOTED else "is above"
    assert first.reason == (
        f"no champion yet; log_loss 0.2578 {word} the ceiling retrain.min_metric = {ceiling} "
        "(for log_loss, at most)"
    )


@pytest.mark.parametrize(
    "metric",
    ["accuracy", "f1", "precision", "recall", "balanced_accuracy", "roc_auc", "pr_auc"],
)
def test_higher_is_better_for_every_other_metric(metric: str) -> None:
    y = _rows()
    rule = RetrainParams.model_validate({"metric": metric, "n_bootstrap": 200, "min_metric": 0.5})
    better = decide(y, _scores(y, 390), _scores(y, 300), rule)
    assert better.decision == PROMOTED, better.reason
    assert better.champion is not None and better.delta is not None
    assert better.delta == pytest.approx(better.challenger - better.champion)
    assert better.delta > 0 and better.ci_low is not None and better.ci_low > 0
    assert better.reason.startswith(f"better: delta {better.delta:+.4f} > retrain.min_delta")
    assert f"{metric} {better.challenger:.4f} >= floor 0.5" in better.reason
    assert "lower is better" not in better.reason
    worse = decide(y, _scores(y, 300), _scores(y, 390), rule)
    assert worse.decision == KEPT and worse.delta == pytest.approx(-better.delta)
    assert worse.reason.startswith("worse: ") and "the challenger is worse" in worse.reason


def test_a_challenger_below_the_logistic_regression_is_never_promoted() -> None:
    y = _rows()
    challenger, champion = _scores(y, 390), _scores(y, 300)  # accuracy 0.9750 vs 0.7500
    plain = decide(y, challenger, champion, RULE)
    assert plain.decision == PROMOTED
    above = Findings(logistic_regression=0.99)  # 0.9750 < 0.99 - 0.01

    refused = decide(y, challenger, champion, RULE, findings=above)

    assert refused.decision == KEPT
    assert refused.reason == (
        "refused: below the logistic regression yardstick: accuracy 0.9750 < 0.9900 "
        "(logistic regression) - 0.01 (retrain.baseline_margin); against the champion, "
        + plain.reason
    )
    assert replace(refused, decision=PROMOTED, reason=plain.reason) == plain  # same numbers
    # Within retrain.baseline_margin of it, or with the rule off, the champion decides.
    assert decide(y, challenger, champion, RULE, findings=Findings(logistic_regression=0.98)) == (
        plain
    )
    off = RetrainParams(require_beats_baseline=False)
    assert decide(y, challenger, champion, off, findings=above) == plain


def test_the_logistic_regression_is_beaten_in_log_losss_direction() -> None:
    y = _rows()
    challenger, champion = _scores(y, 390), _scores(y, 300)  # log_loss 0.2578
    plain = decide(y, challenger, champion, LOG_LOSS)
    assert plain.decision == PROMOTED
    # A higher loss for the logistic regression is below the challenger, not above it.
    assert decide(y, challenger, champion, LOG_LOSS, findings=Findings(None, 0.3)) == plain
    refused = decide(y, challenger, champion, LOG_LOSS, findings=Findings(None, 0.2))
    assert refused.decision == KEPT
    assert refused.reason.startswith(
        "refused: below the logistic regression yardstick: log_loss 0.2578 > 0.2000 "
        "(logistic regression) + 0.01 (retrain.baseline_margin); against the champion, better: "
    )


@pytest.mark.parametrize("require", [True, False])
def test_the_first_champion_must_beat_the_logistic_regression_too(require: bool) -> None:
    y = _rows()
    rule = RetrainParams(require_beats_baseline=require)
    first = decide(y, _scores(y, 390), None, rule, findings=Findings(logistic_regression=0.99))
    floor = "no champion yet; accuracy 0.9750 passes the floor retrain.min_metric = 0.7"
    if require:
        assert first.decision == KEPT
        assert first.reason == (
            "refused: below the logistic regression yardstick: accuracy 0.9750 < 0.9900 "
            f"(logistic regression) - 0.01 (retrain.baseline_margin); {floor}"
        )
    else:
        assert first.decision == PROMOTED and first.reason == floor


CLASSES = ("No", "Yes")


def _says_no_to_all(y: np.ndarray) -> tuple[Scores, Findings]:
    """A model that answers 'No' to every row, and what evaluate finds about it."""
    answers = Scores(probability=np.full(len(y), 0.1), label=np.zeros(len(y), int))
    missing = never_predicted(answers.label)
    assert missing is not None
    return answers, Findings(never_predicts=CLASSES[missing])


@pytest.mark.parametrize("with_champion", [True, False])
def test_a_model_that_never_predicts_a_class_is_never_promoted(with_champion: bool) -> None:
    # Rare positives: answering 'No' to all is right on 95% of rows, clearly more accurate
    # than a champion right on 75%, and over the floor; it is no champion, nor the first one.
    y = (np.arange(400) < 20).astype(int)
    challenger, findings = _says_no_to_all(y)
    champion = _scores(y, 300) if with_champion else None
    plain = decide(y, challenger, champion, RULE)
    assert plain.decision == PROMOTED and plain.challenger == pytest.approx(0.95)
    # Not a yardstick rule: retrain.require_beats_baseline: false does not lift it.
    for rule in (RULE, RetrainParams(require_beats_baseline=False)):
        refused = decide(y, challenger, champion, rule, findings=findings)
        assert refused.decision == KEPT
        judged = f"against the champion, {plain.reason}" if with_champion else plain.reason
        assert refused.reason == f"refused: never predicts 'Yes' on the test rows; {judged}"


def test_both_refusals_are_named() -> None:
    y = (np.arange(400) < 20).astype(int)
    challenger, findings = _says_no_to_all(y)
    both = replace(findings, logistic_regression=0.97)
    refused = decide(y, challenger, None, RULE, findings=both)
    assert refused.reason.startswith(
        "refused: never predicts 'Yes' on the test rows; below the logistic regression "
        "yardstick: accuracy 0.9500 < 0.9700 (logistic regression) - 0.01 "
        "(retrain.baseline_margin); no champion yet; "
    )


# reports/verdict.json as evaluate writes it.
VERDICT: dict[str, Any] = {
    "never_predicts": None, "below_baseline": None, "warnings": [],
    "baselines": {"majority_class": {"accuracy": 0.485, "log_loss": 0.694},
                  "logistic_regression": {"accuracy": 0.9, "log_loss": 0.27}},
}  # fmt: skip


def test_findings_come_from_verdict_json_and_older_runs_refuse_nothing() -> None:
    assert Findings.of(VERDICT, "accuracy") == Findings(None, 0.9)
    assert Findings.of(VERDICT, "log_loss") == Findings(None, 0.27)
    line = "WARNING: the model never predicts 'Yes' on the test rows; try …"
    one_class = VERDICT | {"never_predicts": "Yes", "warnings": [line]}
    assert Findings.of(one_class, "accuracy") == Findings("Yes", 0.9, (line,))
    assert Findings.of({}, "accuracy") == Findings(None, None, ())
    assert Findings.of({}, "accuracy").refusals(RULE, 0.0) == []
    assert Findings.of(VERDICT, "accuracy").refusals(RULE, 0.0) != []


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
    no_verdict: dict[str, Any] = {}  # as a run older than verdict.json
    return Decision(
        "2026-01-02T03:04:05+00:00", comparison, drift, versions, PROVENANCE, METRICS, no_verdict
    )


PROMOTED_V2 = _decision(Versions("2", "1"))


def test_the_record_as_json_keeps_the_keys_its_readers_know() -> None:
    data = PROMOTED_V2.as_json()
    assert list(data) == [
        "finished", "registered_model", "run_id", "run_name", "runs_link", "test_metrics",
        "verdict", "challenger_version", "champion_version", "champion_after", "comparison",
        "drift", "batches", "data_digest", "git_commit",
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


TESTED = METRICS | {"pr_auc": 0.93, "log_loss": 0.31, "threshold": 0.28314}
WARNED = VERDICT | {
    "baselines": {"logistic_regression": {"accuracy": 0.99, "log_loss": 0.2}},
    "never_predicts": "Yes",
    "warnings": ["WARNING: the model never predicts 'Yes' on the test rows; try …",
                 "WARNING: below the logistic regression yardstick: accuracy …"],
}  # fmt: skip


def test_test_scores_append_pr_auc_and_a_threshold_other_than_one_half() -> None:
    assert report.test_scores(TESTED) == (
        "test (200 rows): accuracy 0.9000  roc_auc 0.9500  log_loss 0.3100  pr_auc 0.9300  "
        "threshold 0.2831"
    )
    assert report.test_scores(TESTED | {"threshold": 0.5}).endswith("pr_auc 0.9300")
    assert report.test_scores(METRICS) == "test (200 rows): accuracy 0.9000  roc_auc 0.9500"


def test_pipeline_summary_prints_evaluates_warnings_after_the_test_scores() -> None:
    warnings = WARNED["warnings"]
    lines = report.pipeline_summary(TESTED, "lr=0.02", "abc123", "http://mlflow/", None, warnings)
    assert lines.splitlines()[1:4] == [
        f"  {report.test_scores(TESTED)}",
        "  WARNING: the model never predicts 'Yes' on the test rows; try …",
        "  WARNING: below the logistic regression yardstick: accuracy …",
    ]
    quiet = report.pipeline_summary(METRICS, "lr=0.02", "abc123", "http://mlflow/", None)
    assert quiet.splitlines()[2] == "  runs: http://mlflow/" and "WARNING" not in quiet


def test_a_refused_decision_says_why_with_evaluates_warnings() -> None:
    y = _rows()
    findings = Findings.of(WARNED, "accuracy")
    comparison = decide(y, _scores(y, 390), _scores(y, 300), RULE, findings=findings)
    refused = Decision(PROMOTED_V2.finished, comparison, DRIFT, Versions("2", "1"),
                       PROVENANCE, TESTED, WARNED)  # fmt: skip
    assert refused.findings == findings
    assert comparison.reason.startswith(
        "refused: never predicts 'Yes' on the test rows; below the logistic regression "
        "yardstick: accuracy 0.9750 < 0.9900 (logistic regression) - 0.01 "
        "(retrain.baseline_margin); against the champion, better: delta +0.2250 > "
    )
    summary = report.summary(refused)
    assert summary.startswith("retrain: KEPT challenger v2: accuracy 0.9750 vs champion v1")
    assert f"\n  reason: {comparison.reason}\n" in summary
    assert "champion is now v1" in summary
    assert (
        f"  {report.test_scores(TESTED)}\n"
        "  WARNING: the model never predicts 'Yes' on the test rows; try …\n"
        "  WARNING: below the logistic regression yardstick: accuracy …\n"
        "  look: reports/retrain/report.md"
    ) in summary
    text = report.markdown(refused)
    assert text.startswith("# Retrain 2026-01-02T03:04:05+00:00: kept\n")
    assert f"- reason: {comparison.reason}\n" in text
    assert "\n- WARNING: the model never predicts 'Yes' on the test rows; try …\n" in text
    assert "| challenger | 0.9750 |\n" in text
    assert "| logistic regression (yardstick) | 0.9900 |\n" in text
    assert "yardstick" not in report.markdown(PROMOTED_V2)  # an older run's: no verdict.json
    assert "yardstick) | 0.9000 |" in report.markdown(replace(PROMOTED_V2, verdict=VERDICT))


def test_a_log_loss_decision_says_that_lower_is_better() -> None:
    y = _rows()
    comparison = decide(y, _scores(y, 390), _scores(y, 300), LOG_LOSS)
    decision = replace(PROMOTED_V2, comparison=comparison, verdict=WARNED)
    assert (
        f"log_loss 0.2578 vs champion v1 0.5697, delta {comparison.delta:+.4f} "
        f"[{comparison.ci_low:+.4f}, {comparison.ci_high:+.4f}], p=0.000 "
        "(lower is better: delta is champion - challenger)\n"
    ) in report.summary(decision)
    text = report.markdown(decision)
    assert "| log_loss (lower is better) | value |\n" in text
    assert f"| delta (champion - challenger) | {comparison.delta:+.4f} |\n" in text
    assert "| logistic regression (yardstick) | 0.2000 |\n" in text
    assert "lower is better" not in report.summary(PROMOTED_V2) + report.markdown(PROMOTED_V2)


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
