"""Scheduled retraining: run the pipeline, judge the new model, promote it only if better."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import Metric, RunTag
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from epochline import paths, report, splitting, tracking
from epochline.compare import Comparison, Scores, decide
from epochline.drift import feature_drift, label_shift
from epochline.errors import UserError
from epochline.files import read_json, read_parquet, write_json, write_with
from epochline.lock import exclusive
from epochline.params import Params, load_params
from epochline.pipeline import trained_here
from epochline.registry import CHAMPION, Registry, tag_values
from epochline.schema import CATEGORICAL, Schema
from epochline.tools import dvc_repro, run_tool
from epochline.tracking import TrainedModel

log = logging.getLogger(__name__)

REPORT_DIR = Path("reports/retrain")
# What --commit records: the pipeline's state plus the git-tracked (uncached) DVC outputs.
COMMITTED = ["dvc.lock", "params.yaml", "reports/metrics.json", "reports/roc.json",
             "reports/confusion.csv", "reports/train_history.json"]  # fmt: skip
# Params that decide which rows are test rows, or what the label means: models trained under
# others can't be compared.
SPLIT_KEYS = ("split.test_size", "split.val_size", "split.seed", "data.id_column",
              "data.label_column", "data.positive_class")  # fmt: skip


class RetrainFailed(UserError):
    exit_code = 1


@dataclass
class Outcome:
    status: str  # "promoted", "kept" or "unchanged"
    summary: str
    report: dict[str, Any] = field(default_factory=dict)


def score(model_uri: str, rows: pd.DataFrame) -> Scores:
    """A logged model's answers for raw rows; it picks the columns it takes."""
    model = mlflow.pyfunc.load_model(model_uri)
    out = model.predict(rows[model.metadata.get_input_schema().input_names()])
    return Scores(out["probability"].to_numpy(), out["label"].to_numpy())


def _batch_rows(params: Params) -> tuple[list[str], pd.DataFrame, np.ndarray]:
    """The incoming batch files in the raw table, the table, and each row's batch ('' = base)."""
    manifest = read_json(paths.RAW_MANIFEST, "raw table manifest")
    incoming = Path(params.data.incoming_dir)
    names = [Path(e["file"]).name if Path(e["file"]).parent == incoming else "" for e in manifest]
    origin = np.repeat(names, [e["rows"] for e in manifest])
    return [n for n in names if n], read_parquet(paths.RAW, "raw table"), origin


def _drift(params: Params, seen: list[str]) -> dict[str, Any]:
    """Rows of batches no earlier retrain saw, against the training rows of the rest."""
    batches, raw, origin = _batch_rows(params)
    new_batches = [b for b in batches if b not in seen]
    is_new = np.isin(origin, new_batches)
    if not is_new.any():
        return {"batches": batches, "new_batches": [], "new_rows": 0, "features": [],
                "label": None}  # fmt: skip
    schema = Schema.from_dict(read_json(paths.SCHEMA, "schema"))
    is_train = splitting.is_train(raw, schema.id_column, params.split)
    reference, new = raw[is_train & ~is_new], raw[is_new]
    categorical = [f.name for f in schema.features if f.kind == CATEGORICAL]
    y = raw[schema.label].to_numpy()
    return {
        "batches": batches,
        "new_batches": new_batches,
        "new_rows": int(is_new.sum()),
        "reference_rows": len(reference),
        "features": feature_drift(reference, new, schema.feature_names, categorical),
        "label": label_shift(y[is_train & ~is_new], y[is_new], origin[is_new], schema.classes),
    }


def _incomparable(champion_run_id: str | None, params: Params) -> str | None:
    """Why the champion's held-out rows are not today's, if they are not."""
    if champion_run_id is None:
        return None
    # A key that a champion's run does not hold is newer than that run: it had the default.
    then = {k: str(v) for k, v in Params().flat().items()}
    then.update(mlflow.get_run(champion_run_id).data.params)
    now = {k: str(v) for k, v in params.flat().items()}
    changed = [f"{k} {then[k]} -> {now[k]}" for k in SPLIT_KEYS if then[k] != now[k]]
    return "; ".join(changed) or None


def _judge(params: Params, registry: Registry, trained: TrainedModel) -> Comparison:
    """Both models, raw rows in, on the same current test rows; nothing is written."""
    test = read_parquet(paths.TEST, "test table")
    label = params.data.label_column
    rows = test.drop(columns=label)
    y = test[label].to_numpy()
    champion = registry.alias(CHAMPION)
    challenger = score(trained.model_uri, rows)
    if champion is None:
        return decide(y, challenger, None, params.retrain)
    comparison = decide(y, challenger, score(registry.uri(champion.version), rows), params.retrain)
    changed = _incomparable(champion.run_id, params)
    if changed:
        reason = f"not comparable: the champion was held out on other rows ({changed})"
        return replace(comparison, decision="kept", reason=reason)
    return comparison


def _metric_key(name: str) -> str:
    return re.sub(r"[^\w\-. /]", "_", name)  # what MLflow accepts in a metric name


def _record(registry: Registry, version: str, run_id: str, data: dict[str, Any]) -> None:
    c = data["comparison"]
    values = {
        "reason": c["reason"], "metric": c["metric"], "challenger_value": c["challenger"],
        "champion_value": c["champion"], "champion_version": data["champion_version"],
        "delta": c["delta"], "delta_ci_low": c["ci_low"], "delta_ci_high": c["ci_high"],
        "p_value": c["p_value"], "data_digest": data["data_digest"],
        "git_commit": data["git_commit"], "batches": ",".join(data["batches"]),
        "decision": c["decision"],  # last: a version without it is judged again
    }  # fmt: skip
    registry.tag(version, values)
    now = int(time.time() * 1000)
    drift = [
        Metric(_metric_key(f"drift_{kind}_{f['feature']}"), f[key], now, 0)
        for f in data["drift"]["features"]
        for kind, key in (("psi", "psi"), (f["test"], "statistic"), ("missing", "missing_new"))
    ]
    shift = data["drift"]["label"]
    if shift is not None:
        drift.append(Metric("drift_positive_rate", shift["new_positive_rate"], now, 0))
    tags = [RunTag(k, v) for k, v in tag_values(values, "epochline.retrain.").items()]
    registry.client.log_batch(run_id, metrics=drift, tags=tags)
    registry.client.log_dict(run_id, data, "retrain/report.json")
    registry.client.log_text(run_id, report.markdown(data), "retrain/report.md")
    write_json(data, REPORT_DIR / "report.json")
    write_with(REPORT_DIR / "report.md", lambda tmp: tmp.write_text(report.markdown(data)))


def _seen_batches(registry: Registry) -> list[str]:
    """Batch files that the newest judged version was trained with."""
    judged = [v for v in registry.versions() if v.tags.get("epochline.decision")]
    return (
        [b for b in judged[-1].tags.get("epochline.batches", "").split(",") if b] if judged else []
    )


def _unchanged(registry: Registry, known: ModelVersion, trained: TrainedModel) -> Outcome:
    """The model is already a judged version: say which, on the run and in the registry."""
    version = str(known.version)
    registry.client.set_tag(trained.run_id, "epochline.registered_version", version)
    if known.run_id != trained.run_id:  # the same model, trained again in another run
        registry.tag(version, {"identical_run": trained.run_id})
    return Outcome("unchanged", (
        f"retrain: UNCHANGED: the pipeline's model {trained.model_digest} (run "
        f"{trained.run_name}, {trained.run_id}) is already version {version} of "
        f"{registry.name}; no new version"
    ))  # fmt: skip


def _judge_and_record(params: Params, experiment_id: str, trained: TrainedModel) -> Outcome:
    registry = Registry(tracking.client(), params.tracking.registered_model_name)
    # The first write, and a harmless one: a user who may only read (basic auth gives a
    # read-only user no write on the run, yet lets anyone create a registered model) is
    # stopped here, before a model or a version exists.
    when = datetime.now(UTC).isoformat(timespec="seconds")
    registry.client.set_tag(trained.run_id, "epochline.retrain.attempted", when)
    # By what the model is (weights and config), not by the bytes of a file.
    known = registry.version_with_tag("model_digest", trained.model_digest)
    if known is not None and known.tags.get("epochline.decision"):
        return _unchanged(registry, known, trained)
    champion = registry.alias(CHAMPION)
    comparison = _judge(params, registry, trained)
    drift = _drift(params, _seen_batches(registry))
    if known is None:  # else: registered by a retrain that died before its decision
        known = registry.register(trained.model_uri, trained.run_id, trained.model_digest)
    version = str(known.version)
    registry.mark_challenger(version)
    train_tags = mlflow.get_run(trained.run_id).data.tags
    data = {
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "registered_model": registry.name,
        "run_id": trained.run_id,
        "run_name": trained.run_name,
        "runs_link": tracking.where_runs_are(experiment_id),
        "test_metrics": read_json(paths.METRICS, "test metrics"),
        "challenger_version": version,
        "champion_version": str(champion.version) if champion else None,
        "champion_after": version if comparison.promoted else (
            str(champion.version) if champion else None),
        "comparison": comparison.as_dict(),
        "drift": drift,
        "batches": drift["batches"],
        "data_digest": train_tags.get(tracking.TAG_DATA_DIGEST, ""),
        "git_commit": train_tags.get(tracking.TAG_GIT_COMMIT, ""),
    }  # fmt: skip
    _record(registry, version, trained.run_id, data)
    if comparison.promoted:
        registry.promote(version)  # aliases move last, after the decision is on record
    return Outcome(comparison.decision, report.summary(data), data)


def _commit(outcome: Outcome, incoming_dir: str) -> None:
    paths_ = [p for p in [*COMMITTED, incoming_dir] if Path(p).exists()]
    run_tool(["git", "add", "--", *paths_], "git add")
    if subprocess.run(["git", "diff", "--cached", "--quiet", "--", *paths_]).returncode == 0:
        log.info("--commit: nothing changed to commit")
        return
    c, data = outcome.report["comparison"], outcome.report
    message = (
        f"retrain: {c['decision']} v{data['challenger_version']} "
        f"({c['metric']} {c['challenger']:.4f}, run {data['run_id']})"
    )
    # Only these paths: whatever else the user had staged stays out of the commit.
    run_tool(["git", "commit", "-q", "-m", message, "--", *paths_], "git commit")


def retrain(commit: bool = False, push: bool = False) -> Outcome:
    params = load_params()
    with exclusive(Path(params.retrain.lock_file)):
        dvc_repro()
        experiment_id = tracking.connect(params.tracking)
        trained = trained_here(experiment_id)
        try:
            outcome = _judge_and_record(params, experiment_id, trained)
        except MlflowException as exc:
            raise RetrainFailed(tracking.describe_failure(exc, tracking.tracking_uri())) from None
        if outcome.status == "unchanged":
            return outcome
        # On record before --commit/--push, which can fail; the summary comes at the end.
        log.info("decision recorded: %s v%s", outcome.status, outcome.report["challenger_version"])
        if commit:
            _commit(outcome, params.data.incoming_dir)
        if push:
            run_tool([sys.executable, "-m", "dvc", "push"], "dvc push")
    return outcome


def rollback(reason: str) -> str:
    """champion ← previous-champion, with the reason on both versions."""
    params = load_params()
    with exclusive(Path(params.retrain.lock_file)):  # never while a retrain promotes
        tracking.connect(params.tracking)
        registry = Registry(tracking.client(), params.tracking.registered_model_name)
        try:
            old, new, previous = registry.rollback()
        except LookupError as exc:
            raise RetrainFailed(f"rollback of {registry.name}: {exc}; nothing changed") from None
        when = datetime.now(UTC).isoformat(timespec="seconds")
        registry.tag(old, {"rolled_back": when, "rollback_reason": reason})
        registry.tag(new, {"restored_by_rollback": when, "rollback_reason": reason})
    return (
        f"rollback: champion v{old} -> v{new}; previous-champion "
        f"{'v' + previous if previous else 'none'}; reason: {reason}"
    )
