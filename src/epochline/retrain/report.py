"""The retrain report as people read it: Markdown for the run's artifacts, a summary line."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # types only: `epochline repro` prints its summary without scipy, sklearn
    from epochline.retrain.decision import Decision
    from epochline.retrain.drift import BatchDrift, FeatureDrift, LabelShift
    from epochline.tracking.store import TrainedModel


def _version(value: str | None) -> str:
    return f"v{value}" if value else "none"


def markdown(decision: Decision) -> str:
    c, v = decision.comparison, decision.versions
    lines = [
        f"# Retrain {decision.finished}: {c.decision}",
        "",
        f"- challenger: {_version(v.challenger)} (run {decision.provenance.run_id})",
        f"- champion before: {_version(v.champion)}",
        f"- champion after: {_version(decision.champion_after)}",
        f"- reason: {c.reason}",
        f"- test rows: {c.n_rows}; data digest {decision.provenance.data_digest}",
        *[f"- {line}" for line in decision.findings.warnings],
        "",
        f"| {c.metric}{' (lower is better)' if c.lower_is_better else ''} | value |",
        "|---|---|",
        f"| challenger | {c.challenger:.4f} |",
    ]
    if c.champion is not None:
        gain = " (champion - challenger)" if c.lower_is_better else ""
        lines += [
            f"| champion | {c.champion:.4f} |",
            f"| delta{gain} | {c.delta:+.4f} |",
            f"| interval | [{c.ci_low:+.4f}, {c.ci_high:+.4f}] |",
            f"| p (challenger not better) | {c.p_value:.4f} |",
        ]
    yardstick = decision.findings.logistic_regression
    if yardstick is not None:
        lines.append(f"| logistic regression (yardstick) | {yardstick:.4f} |")
    return "\n".join(lines + _seed_lines(decision) + _drift_lines(decision.drift)) + "\n"


def _seed_lines(decision: Decision) -> list[str]:
    """retrain.seeds > 1: each seed's model judged by the same rule; promoted only if all held."""
    if not decision.seeds:
        return []
    c = decision.comparison
    held = sum(s.held for s in decision.seeds)
    lines = [
        "",
        f"## Seeds: {held} of {len(decision.seeds)} held (retrain.seeds: each must)",
        "",
        f"| seed | run | {c.metric} | delta | interval | held |",
        "|---|---|---|---|---|---|",
    ]
    for s in decision.seeds:
        delta = "" if s.delta is None else f"{s.delta:+.4f}"
        interval = "" if s.ci_low is None else f"[{s.ci_low:+.4f}, {s.ci_high:+.4f}]"
        lines.append(f"| {s.seed} | {s.run_id} | {s.value:.4f} | {delta} | {interval} | "
                     f"{'yes' if s.held else 'no'} |")  # fmt: skip
    return lines


def _drift_lines(drift: BatchDrift) -> list[str]:
    lines = ["", f"## Drift: {drift.new_rows} new rows in {len(drift.new_batches)} batch(es)"]
    if drift.features:
        lines += [
            "",
            "| feature | kind | PSI | test | statistic | p | missing (train → new) "
            "| new categories | drifted |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        lines += [_feature_row(f) for f in drift.features]
    if drift.label:
        lines += ["", "## Label", "", f"- {label_line(drift.label)}"]
        lines += [
            f"- {b['batch']}: {b['rows']} rows, positive rate {b['positive_rate']:.1%}"
            + (f" (one class only: {b['one_class']!r})" if b["one_class"] is not None else "")
            for b in drift.label["batches"]
        ]
    return lines


def _feature_row(f: FeatureDrift) -> str:
    unseen = f["new_categories"]
    return (
        f"| {f['feature']} | {f['kind']} | {f['psi']:.4f} | {f['test']} | "
        f"{f['statistic']:.4f} | {f['p_value']:.3g} | "
        f"{f['missing_reference']:.1%} → {f['missing_new']:.1%} | "
        f"{', '.join(unseen[:5])}{' …' if len(unseen) > 5 else ''} | "
        f"{'yes' if f['drifted'] else ''} |"
    )


def label_line(shift: LabelShift) -> str:
    """`positive rate 41.2% in training rows, 0.0% in new rows; one class only: batch-0003.csv`"""
    line = (f"positive rate {shift['reference_positive_rate']:.1%} in training rows, "
            f"{shift['new_positive_rate']:.1%} in new rows")  # fmt: skip
    alone = [f"{b['batch']} ({b['one_class']!r})" for b in shift["batches"]
             if b["one_class"] is not None]  # fmt: skip
    return line + (f"; ONE CLASS ONLY in {', '.join(alone)}" if alone else "")


# The test metrics the summaries show, in this order (the README's example line has it).
SHOWN = ("accuracy", "roc_auc", "f1", "log_loss", "pr_auc")


def test_scores(metrics: dict[str, Any]) -> str:
    """`test (200 rows): accuracy 0.8900  roc_auc 0.9536 …`, from reports/metrics.json; the
    decision threshold too where it is not 0.5 (`threshold 0.2831`)."""
    rows = sum(sum(row) for row in metrics.get("confusion_matrix", []))
    scores = [f"{k} {metrics[k]:.4f}" for k in SHOWN if k in metrics]
    threshold = metrics.get("threshold")
    if isinstance(threshold, int | float) and threshold != 0.5:
        scores.append(f"threshold {threshold:.4f}")
    return f"test ({rows} rows): {'  '.join(scores)}"


def pipeline_summary(
    metrics: dict[str, Any],
    run_name: str,
    run_id: str,
    link: str,
    remote: str | None,
    warnings: Sequence[str] = (),
) -> str:
    """What `epochline repro` prints last: the test metrics, evaluate's warnings (verdict.json
    "warnings"), the run, where to look."""
    lines = [
        f"pipeline: run '{run_name}' ({run_id})",
        f"  {test_scores(metrics)}",
        *[f"  {line}" for line in warnings],
        f"  runs: {link}"
        + (" (start it: mlflow ui)" if link.startswith("http://127.0.0.1:5000/") else ""),
        "  also: reports/model_card.md; dvc exp show --only-changed; "
        "dvc plots show (dvc_plots/index.html)",
    ]
    if remote is not None:
        lines.append(f"  share: dvc push (sends the outputs to DVC remote '{remote}')")
    return "\n".join(lines)


def summary(decision: Decision) -> str:
    c, p = decision.comparison, decision.provenance
    head = f"retrain: {c.decision.upper()} challenger {_version(decision.versions.challenger)}"
    if c.champion is None:
        body = f"{c.metric} {c.challenger:.4f} (no comparable champion)"
    else:
        body = (
            f"{c.metric} {c.challenger:.4f} vs champion "
            f"{_version(decision.versions.champion)} {c.champion:.4f}, delta {c.delta:+.4f} "
            f"[{c.ci_low:+.4f}, {c.ci_high:+.4f}], p={c.p_value:.3f}"
            + (" (lower is better: delta is champion - challenger)" if c.lower_is_better else "")
        )
    drifted = decision.drift.drifted
    drift = f"drift in {', '.join(drifted)}" if drifted else "no feature drifted"
    shift = decision.drift.label
    label = f"  label: {label_line(shift)}\n" if shift else ""
    return (
        f"{head}: {body}\n  reason: {c.reason}\n"
        f"  {drift}; champion is now {_version(decision.champion_after)}\n{label}"
        f"  run '{p.run_name}' ({p.run_id})\n"
        f"  {test_scores(decision.test_metrics)}\n"
        + "".join(f"  {line}\n" for line in decision.findings.warnings)
        + f"  look: reports/retrain/report.md; runs: {p.runs_link}; "
        f"Model registry -> {p.registered_model}"
    )


def unchanged(trained: TrainedModel, version: str, registered_model: str) -> str:
    return (
        f"retrain: UNCHANGED: the pipeline's model {trained.model_digest} (run "
        f"{trained.run_name}, {trained.run_id}) is already version {version} of "
        f"{registered_model}; no new version"
    )


def commit_message(decision: Decision) -> str:
    """What `retrain --commit` says: `retrain: promoted v3 (accuracy 0.9100, run …)`."""
    c = decision.comparison
    return (
        f"retrain: {c.decision} v{decision.versions.challenger} "
        f"({c.metric} {c.challenger:.4f}, run {decision.provenance.run_id})"
    )
