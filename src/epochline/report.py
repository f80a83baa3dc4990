"""The retrain report as people read it: Markdown for the run's artifacts, a summary line."""

from __future__ import annotations

from typing import Any


def _version(value: str | None) -> str:
    return f"v{value}" if value else "none"


def markdown(report: dict[str, Any]) -> str:
    c = report["comparison"]
    lines = [
        f"# Retrain {report['finished']}: {c['decision']}",
        "",
        f"- challenger: {_version(report['challenger_version'])} (run {report['run_id']})",
        f"- champion before: {_version(report['champion_version'])}",
        f"- champion after: {_version(report['champion_after'])}",
        f"- reason: {c['reason']}",
        f"- test rows: {c['n_rows']}; data digest {report['data_digest']}",
        "",
        f"| {c['metric']} | value |",
        "|---|---|",
        f"| challenger | {c['challenger']:.4f} |",
    ]
    if c["champion"] is not None:
        lines += [
            f"| champion | {c['champion']:.4f} |",
            f"| delta | {c['delta']:+.4f} |",
            f"| interval | [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}] |",
            f"| p (challenger not better) | {c['p_value']:.4f} |",
        ]
    drift = report["drift"]
    lines += [
        "",
        f"## Drift: {drift['new_rows']} new rows in {len(drift['new_batches'])} batch(es)",
    ]
    if drift["features"]:
        lines += [
            "",
            "| feature | kind | PSI | test | statistic | p | missing (train → new) "
            "| new categories | drifted |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {f['feature']} | {f['kind']} | {f['psi']:.4f} | {f['test']} | "
            f"{f['statistic']:.4f} | {f['p_value']:.3g} | "
            f"{f['missing_reference']:.1%} → {f['missing_new']:.1%} | "
            f"{', '.join(f['new_categories'][:5])}{' …' if len(f['new_categories']) > 5 else ''} | "
            f"{'yes' if f['drifted'] else ''} |"
            for f in drift["features"]
        ]
    if drift.get("label"):
        lines += ["", "## Label", "", f"- {label_line(drift['label'])}"]
        lines += [
            f"- {b['batch']}: {b['rows']} rows, positive rate {b['positive_rate']:.1%}"
            + (f" (one class only: {b['one_class']!r})" if b["one_class"] is not None else "")
            for b in drift["label"]["batches"]
        ]
    return "\n".join(lines) + "\n"


def label_line(shift: dict[str, Any]) -> str:
    """`positive rate 41.2% in training rows, 0.0% in new rows; one class only: batch-0003.csv`"""
    line = (f"positive rate {shift['reference_positive_rate']:.1%} in training rows, "
            f"{shift['new_positive_rate']:.1%} in new rows")  # fmt: skip
    alone = [f"{b['batch']} ({b['one_class']!r})" for b in shift["batches"]
             if b["one_class"] is not None]  # fmt: skip
    return line + (f"; ONE CLASS ONLY in {', '.join(alone)}" if alone else "")


def test_scores(metrics: dict[str, Any]) -> str:
    """`test (200 rows): accuracy 0.8900  roc_auc 0.9536 …`, from reports/metrics.json."""
    rows = sum(sum(row) for row in metrics.get("confusion_matrix", []))
    scores = "  ".join(
        f"{k} {metrics[k]:.4f}" for k in ("accuracy", "roc_auc", "f1", "log_loss") if k in metrics
    )
    return f"test ({rows} rows): {scores}"


def pipeline_summary(
    metrics: dict[str, Any], run_name: str, run_id: str, link: str, remote: str | None
) -> str:
    """What `epochline repro` prints last: the test metrics, the run, where to look."""
    lines = [
        f"pipeline: run '{run_name}' ({run_id})",
        f"  {test_scores(metrics)}",
        f"  runs: {link}"
        + (" (start it: mlflow ui)" if link.startswith("http://127.0.0.1:5000/") else ""),
        "  also: dvc exp show --only-changed; dvc plots show (dvc_plots/index.html)",
    ]
    if remote is not None:
        lines.append(f"  share: dvc push (sends the outputs to DVC remote '{remote}')")
    return "\n".join(lines)


def summary(report: dict[str, Any]) -> str:
    c = report["comparison"]
    head = f"retrain: {c['decision'].upper()} challenger {_version(report['challenger_version'])}"
    if c["champion"] is None:
        body = f"{c['metric']} {c['challenger']:.4f} (no comparable champion)"
    else:
        body = (
            f"{c['metric']} {c['challenger']:.4f} vs champion "
            f"{_version(report['champion_version'])} {c['champion']:.4f}, delta {c['delta']:+.4f} "
            f"[{c['ci_low']:+.4f}, {c['ci_high']:+.4f}], p={c['p_value']:.3f}"
        )
    drifted = [f["feature"] for f in report["drift"]["features"] if f["drifted"]]
    drift = f"drift in {', '.join(drifted)}" if drifted else "no feature drifted"
    shift = report["drift"].get("label")
    label = f"  label: {label_line(shift)}\n" if shift else ""
    return (
        f"{head}: {body}\n  reason: {c['reason']}\n"
        f"  {drift}; champion is now {_version(report['champion_after'])}\n{label}"
        f"  run '{report['run_name']}' ({report['run_id']})\n"
        f"  {test_scores(report['test_metrics'])}\n"
        f"  look: reports/retrain/report.md; runs: {report['runs_link']}; "
        f"Model registry -> {report['registered_model']}"
    )
