"""Scheduled retraining: run the pipeline, register the challenger, promote only if better."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from epochline import paths, tracking
from epochline.compare import Comparison, Scores, decide
from epochline.data import read_table, table_files
from epochline.drift import feature_drift
from epochline.errors import UserError
from epochline.files import read_json, read_parquet, write_json, write_with
from epochline.lock import exclusive
from epochline.params import Params, load_params
from epochline.registry import CHAMPION, Registry
from epochline.splitting import TRAIN, assign, key_columns

log = logging.getLogger(__name__)

REPORT_DIR = Path("reports/retrain")
GIT_TRACKED_OUTPUTS = [
    "dvc.lock",
    "params.yaml",
    "reports/metrics.json",
    "reports/roc.json",
    "reports/confusion.csv",
    "reports/train_history.json",
]


class RetrainFailed(UserError):
    exit_code = 1


def _tool_env() -> dict[str, str]:
    # dvc.yaml's commands call `python`: make it this interpreter, also under cron/systemd.
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


def _run(args: list[str], what: str) -> None:
    """Run a tool, passing its output through; fail with its own error line if it fails."""
    errors: list[str] = []
    with subprocess.Popen(
        args, env=_tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stderr.write(line)
            if line.lower().startswith("error"):
                errors.append(line.strip())
    if proc.returncode != 0:
        detail = errors[0] if errors else f"exited {proc.returncode}"
        raise RetrainFailed(f"{what} failed: {detail.removeprefix('error: ')}")


def score(model_uri: str, rows: pd.DataFrame) -> Scores:
    out = mlflow.pyfunc.load_model(model_uri).predict(rows)
    return Scores(out["probability"].to_numpy(), out["label"].to_numpy())


@dataclass
class Outcome:
    status: str  # "promoted", "kept" or "unchanged"
    summary: str
    report: dict[str, Any] = field(default_factory=dict)


def _batches(params: Params) -> list[Path]:
    folder = Path(params.data.incoming_dir)
    return table_files(folder) if folder.is_dir() else []


def _seen_batches(registry: Registry) -> list[str]:
    """Batch files the newest registered version was trained with."""
    versions = registry.versions()
    return json.loads(versions[-1].tags.get("epochline.batches") or "[]") if versions else []


def _drift(params: Params, batches: list[Path]) -> dict[str, Any]:
    """New batch rows against the training rows they were not part of."""
    if not batches:
        return {"new_batches": [], "new_rows": 0, "features": []}
    raw = read_parquet(paths.RAW, "raw table")
    label, id_column = params.data.label_column, params.data.id_column
    features = [c for c in raw.columns if c not in (label, id_column)]
    new = pd.concat([read_table(b) for b in batches], ignore_index=True)
    hashes = pd.util.hash_pandas_object(raw[features], index=False)
    is_new = hashes.isin(pd.util.hash_pandas_object(new[features].astype(float), index=False))
    is_train = assign(raw, key_columns(list(raw.columns), id_column), params.split) == TRAIN
    reference = raw[is_train & ~is_new.to_numpy()]
    return {
        "new_batches": [b.name for b in batches],
        "new_rows": len(new),
        "reference_rows": len(reference),
        "features": feature_drift(reference, new, features),
    }


def _markdown(report: dict[str, Any]) -> str:
    c = report["comparison"]
    lines = [
        f"# Retrain {report['finished']}: {c['decision']}",
        "",
        f"- challenger: version {report['challenger_version']} (run {report['run_id']})",
        f"- champion before: {report['champion_version'] or 'none'}",
        f"- champion after: version {report['champion_after']}"
        if report["champion_after"]
        else "- champion after: none",
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
            f"| p (challenger ≤ champion) | {c['p_value']:.4f} |",
        ]
    drift = report["drift"]
    lines += [
        "",
        f"## Drift: {drift['new_rows']} new rows in {len(drift['new_batches'])} batch(es)",
    ]
    if drift["features"]:
        lines += ["", "| feature | PSI | KS | KS p | drifted |", "|---|---|---|---|---|"]
        lines += [
            f"| {f['feature']} | {f['psi']:.4f} | {f['ks_statistic']:.4f} | "
            f"{f['ks_p_value']:.3g} | {'yes' if f['drifted'] else ''} |"
            for f in drift["features"]
        ]
    return "\n".join(lines) + "\n"


def _summary(report: dict[str, Any]) -> str:
    c = report["comparison"]
    head = f"retrain: {c['decision'].upper()} challenger v{report['challenger_version']}"
    if c["champion"] is None:
        body = f"{c['metric']} {c['challenger']:.4f} (no champion before)"
    else:
        body = (
            f"{c['metric']} {c['challenger']:.4f} vs champion v{report['champion_version']} "
            f"{c['champion']:.4f}, delta {c['delta']:+.4f} "
            f"[{c['ci_low']:+.4f}, {c['ci_high']:+.4f}], p={c['p_value']:.3f}"
        )
    drifted = [f["feature"] for f in report["drift"]["features"] if f["drifted"]]
    drift = f"drift in {', '.join(drifted)}" if drifted else "no feature drifted (PSI ≤ 0.2)"
    return (
        f"{head}: {body}\n  reason: {c['reason']}\n  {drift}; "
        f"champion is now {'v' + report['champion_after'] if report['champion_after'] else 'none'}"
    )


def _record(registry: Registry, version: str, run_id: str, report: dict[str, Any]) -> None:
    c = report["comparison"]
    tags = {
        "decision": c["decision"],
        "reason": c["reason"],
        "metric": c["metric"],
        "challenger_value": c["challenger"],
        "champion_value": c["champion"],
        "champion_version": report["champion_version"],
        "delta": c["delta"],
        "delta_ci": None if c["ci_low"] is None else f"[{c['ci_low']:.6f}, {c['ci_high']:.6f}]",
        "p_value": c["p_value"],
        "data_digest": report["data_digest"],
        "git_commit": report["git_commit"],
        "batches": json.dumps(report["batches"]),
    }
    registry.tag(version, tags)
    client = registry.client
    for key, value in tags.items():
        client.set_tag(run_id, f"epochline.retrain.{key}", "" if value is None else str(value))
    drift_metrics = {f"drift_psi_{f['feature']}": f["psi"] for f in report["drift"]["features"]} | {
        f"drift_ks_{f['feature']}": f["ks_statistic"] for f in report["drift"]["features"]
    }
    for key, value in drift_metrics.items():
        client.log_metric(run_id, key, value)
    client.log_dict(run_id, report, "retrain/report.json")
    client.log_text(run_id, _markdown(report), "retrain/report.md")
    write_json(report, REPORT_DIR / "report.json")
    write_with(REPORT_DIR / "report.md", lambda tmp: tmp.write_text(_markdown(report)))


def _judge(params: Params, registry: Registry, run: dict[str, Any]) -> dict[str, Any]:
    test = read_parquet(paths.TEST, "test table")
    label = params.data.label_column
    rows = test.drop(columns=[c for c in (label, params.data.id_column) if c is not None])
    y = test[label].to_numpy()
    champion = registry.alias(CHAMPION)
    batches = _batches(params)
    new_batches = [b for b in batches if b.name not in _seen_batches(registry)]

    challenger = registry.register(run["model_uri"], run["run_id"])
    champion_scores = score(registry.uri(champion.version), rows) if champion else None
    comparison: Comparison = decide(
        y, score(registry.uri(challenger.version), rows), champion_scores, params.retrain
    )
    if comparison.promoted:
        registry.promote(challenger.version)
    train_run = mlflow.get_run(run["run_id"])
    return {
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "registered_model": registry.name,
        "run_id": run["run_id"],
        "challenger_version": str(challenger.version),
        "champion_version": str(champion.version) if champion else None,
        "champion_after": str(challenger.version)
        if comparison.promoted
        else (str(champion.version) if champion else None),
        "comparison": comparison.as_dict(),
        "drift": _drift(params, new_batches),
        "batches": [b.name for b in batches],
        "data_digest": train_run.data.tags.get(tracking.TAG_DATA_DIGEST, ""),
        "git_commit": train_run.data.tags.get(tracking.TAG_GIT_COMMIT, ""),
        "test_rows": int(np.size(y)),
    }


def _commit(report: dict[str, Any], incoming_dir: str) -> None:
    existing = [p for p in [*GIT_TRACKED_OUTPUTS, incoming_dir] if Path(p).exists()]
    _run(["git", "add", "--", *existing], "git add")
    staged = subprocess.run(["git", "diff", "--cached", "--quiet"], check=False)
    if staged.returncode == 0:
        log.info("--commit: nothing changed to commit")
        return
    c = report["comparison"]
    message = (
        f"retrain: {c['decision']} v{report['challenger_version']} "
        f"({c['metric']} {c['challenger']:.4f}, run {report['run_id']})"
    )
    _run(["git", "commit", "-q", "-m", message], "git commit")


def retrain(commit: bool = False, push: bool = False) -> Outcome:
    params = load_params()
    with exclusive(Path(params.retrain.lock_file)):
        _run([sys.executable, "-m", "dvc", "repro"], "pipeline (dvc repro)")
        run = read_json(paths.RUN_INFO, "train's run info")
        tracking.connect(params.tracking)
        registry = Registry(tracking.client(), params.tracking.registered_model_name)
        known = registry.version_of_run(run["run_id"])
        if known is not None:
            summary = (
                f"retrain: UNCHANGED: the pipeline's model (run {run['run_id']}) is already "
                f"version {known.version} of {registry.name}; no new version"
            )
            return Outcome("unchanged", summary)
        report = _judge(params, registry, run)
        _record(registry, report["challenger_version"], run["run_id"], report)
        if commit:
            _commit(report, params.data.incoming_dir)
        if push:
            _run([sys.executable, "-m", "dvc", "push"], "dvc push")
    return Outcome(report["comparison"]["decision"], _summary(report), report)
