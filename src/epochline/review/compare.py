"""`epochline compare A B`: two models side by side, as a reviewer of a change needs them.

What differs (params, data, code, packages); every test metric of both with B - A and its
paired bootstrap interval on the test rows both can be scored on; retrain's verdict for B
as a challenger to A, by the same rules and in the same words. render.py writes it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from epochline.core import paths
from epochline.core.errors import UserError, first_line
from epochline.core.files import read_parquet
from epochline.core.params import Params, RetrainParams, load_params
from epochline.evaluation.baselines import LOGISTIC, RUN_PREFIX
from epochline.evaluation.metrics import LOWER_IS_BETTER, NAMES, never_predicted
from epochline.retrain.compare import (
    Findings,
    Scores,
    decide,
    held_out_elsewhere,
    metric_value,
    paired_differences,
    with_defaults,
)
from epochline.review import render, seeds
from epochline.review.targets import Side, TargetNotFound, resolve
from epochline.serving.scoring import LoggedModel
from epochline.tracking import store
from epochline.tracking.tags import (
    KEPT,
    PROMOTED,
    TAG_DATA_DIGEST,
    TAG_GIT_COMMIT,
    TAG_GIT_DIRTY,
    TAG_NEVER_PREDICTS,
    VERSION_TAG,
)

log = logging.getLogger(__name__)

FORMATS = ("md", "html", "json")
# Metrics with a paired bootstrap interval; the positive rates are the data's and the
# threshold's, not a skill to test.
WITH_INTERVAL = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "pr_auc",
                 "balanced_accuracy")  # fmt: skip
EPOCH_METRICS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")


@dataclass(frozen=True)
class Shared:
    """The test rows both models are scored on, or why there are none."""

    y: np.ndarray | None = None
    a: Scores | None = None
    b: Scores | None = None
    reason: str | None = None

    @property
    def n(self) -> int:
        return 0 if self.y is None else len(self.y)


def _held_out_elsewhere(side: Side, label: str, params: Params) -> str | None:
    changed = held_out_elsewhere(side.run.data.params, params)
    if changed is None:
        return None
    return f"{label} was held out on other rows than this workspace's test table ({changed})"


def _score(side: Side, label: str, rows: Any) -> Scores | str:
    try:
        return Scores.of(LoggedModel(side.model_uri).score(rows))
    except (MlflowException, KeyError, ValueError) as exc:
        return f"{label}'s model cannot score this workspace's test table: {first_line(exc)}"


def shared_rows(params: Params, a: Side, b: Side) -> Shared:
    """This workspace's test rows, where both runs split the data by the same rule: the rule
    keys each row by its content, so those rows were held out from both, whatever data
    each trained on (rows added later are held out from the older model all the more)."""
    if not paths.TEST.exists():
        return Shared(reason=f"no test table here ({paths.TEST}): run `epochline repro` first")
    for side, label in ((a, "A"), (b, "B")):
        reason = _held_out_elsewhere(side, label, params)
        if reason:
            return Shared(reason=reason)
    rows = read_parquet(paths.TEST, "test table")
    scored = [_score(a, "A", rows), _score(b, "B", rows)]
    for s in scored:
        if isinstance(s, str):
            return Shared(reason=s)
    y = rows[params.data.label_column].to_numpy()
    return Shared(y, *scored)  # type: ignore[arg-type]


def test_metrics(side: Side) -> dict[str, float]:
    """The test metrics as the store holds them (a seeds parent: their means)."""
    logged = side.run.data.metrics
    suffix = "_mean" if side.seeds else ""
    return {m: logged[f"test_{m}{suffix}"] for m in NAMES if f"test_{m}{suffix}" in logged}


def _interval(name: str, shared: Shared, rule: RetrainParams) -> tuple[float, float] | None:
    """The paired bootstrap interval of B - A (the metric's own direction)."""
    if shared.y is None or shared.a is None or shared.b is None or name not in WITH_INTERVAL:
        return None
    gains = paired_differences(
        shared.y, shared.b, shared.a, rule.model_copy(update={"metric": name})
    )
    if len(gains) == 0:  # AUC on resamples that all lack a class
        return None
    diffs = -gains if name in LOWER_IS_BETTER else gains  # gains: above 0 means B better
    tail = (1 - rule.confidence) / 2
    low, high = np.quantile(diffs, [tail, 1 - tail])
    return float(low), float(high)


def _shared_difference(name: str, shared: Shared) -> float | None:
    """B - A on the shared rows: the difference the interval is about (the store's B - A
    is each run on its own test rows, which are these unless the data changed)."""
    if shared.y is None or shared.a is None or shared.b is None:
        return None
    return metric_value(name, shared.y, shared.b) - metric_value(name, shared.y, shared.a)


def _inside_spread(name: str, a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool | None:
    """Both sides over seeds: do their means differ by no more than a seed alone moves the
    metric (the larger of the two seed standard deviations)? A bound that does not widen
    with more seeds, as the seeds' range would."""
    if not a or not b or name not in a or name not in b:
        return None
    return bool(abs(b[name]["mean"] - a[name]["mean"]) <= max(a[name]["std"], b[name]["std"]))


def metric_rows(a: Side, b: Side, shared: Shared, rule: RetrainParams) -> list[dict[str, Any]]:
    ma, mb, sa, sb = test_metrics(a), test_metrics(b), seeds.spread(a.run), seeds.spread(b.run)
    rows = []
    for name in NAMES:
        if name not in ma or name not in mb:
            continue
        interval = _interval(name, shared, rule)
        rows.append({
            "name": name, "a": ma[name], "b": mb[name], "difference": mb[name] - ma[name],
            "shared_difference": _shared_difference(name, shared),
            "ci_low": interval[0] if interval else None,
            "ci_high": interval[1] if interval else None,
            "lower_is_better": name in LOWER_IS_BETTER,
            "within_seed_spread": _inside_spread(name, sa, sb),
        })  # fmt: skip
    return rows


def _findings(side: Side, scores: Scores, metric: str) -> Findings:
    """What refuses B as retrain would: a class it never answers on the shared rows (its
    run's tag names it as the data does), and the yardstick its run logged, if any (a
    seeds parent has none: the line then says it was not checked)."""
    missing = never_predicted(scores.label)
    named = side.run.data.tags.get(TAG_NEVER_PREDICTS) or str(missing)
    yardstick = side.run.data.metrics.get(f"{RUN_PREFIX[LOGISTIC]}{metric}")
    return Findings(None if missing is None else named, yardstick)


def _spread_overlap(metric: str, a: Side, b: Side) -> str:
    sa, sb = (seeds.spread(side.run) or {} for side in (a, b))
    gap = abs(sb[metric]["mean"] - sa[metric]["mean"])
    std = max(sa[metric]["std"], sb[metric]["std"])
    return (
        f"inside the seed spread on {metric}: the means differ by {gap:.4f}, a seed alone "
        f"moves it by {std:.4f} (the larger std over the seeds)"
    )


def verdict(
    a: Side, b: Side, shared: Shared, rule: RetrainParams, rows: list[dict[str, Any]]
) -> dict[str, str]:
    """retrain's decision were B the challenger and A the champion, in retrain's words."""
    if shared.y is None or shared.a is None or shared.b is None:
        return {"decision": "not judged", "line": f"not judged: {shared.reason}"}
    findings = _findings(b, shared.b, rule.metric)
    judged = decide(shared.y, shared.b, shared.a, rule, findings=findings)
    decision, reason = judged.decision, judged.reason
    if findings.logistic_regression is None and rule.require_beats_baseline:
        reason += "; the yardstick not checked (B's run logged none)"
    row = next((r for r in rows if r["name"] == rule.metric), None)
    if row is not None and row["within_seed_spread"]:
        # Seeds alone move the metric as far: no difference to act on, whatever one pair says.
        decision, reason = KEPT, f"{_spread_overlap(rule.metric, a, b)}; {reason}"
    word = "PROMOTED" if decision == PROMOTED else "KEPT (not promoted)"
    return {
        "decision": decision,
        "line": f"B over A by retrain's rule ({rule.metric}): {word}: {reason}",
    }


def _packages(side: Side) -> dict[str, str]:
    prefix = VERSION_TAG.format("")
    tags = side.run.data.tags
    return {k.removeprefix(prefix): v for k, v in tags.items() if k.startswith(prefix)}


def differences(a: Side, b: Side) -> dict[str, Any]:
    pa, pb = (with_defaults(side.run.data.params) for side in (a, b))
    ka, kb = _packages(a), _packages(b)

    def tag(side: Side, key: str) -> str:
        return side.run.data.tags.get(key, "")

    def commit(side: Side) -> str:
        dirty = " (uncommitted changes)" if tag(side, TAG_GIT_DIRTY) == "true" else ""
        return tag(side, TAG_GIT_COMMIT) + dirty

    return {
        "params": [{"key": k, "a": pa.get(k), "b": pb.get(k)}
                   for k in sorted(pa.keys() | pb.keys()) if pa.get(k) != pb.get(k)],
        "data_digest": {"a": tag(a, TAG_DATA_DIGEST), "b": tag(b, TAG_DATA_DIGEST)},
        "git_commit": {"a": commit(a), "b": commit(b)},
        "packages": [{"name": k, "a": ka.get(k), "b": kb.get(k)}
                     for k in sorted(ka.keys() | kb.keys())],
    }  # fmt: skip


def curves(client: MlflowClient, side: Side) -> dict[str, list[float]]:
    """Per-epoch train/val loss and accuracy of the run that trained the side's model."""
    found = {}
    for key in EPOCH_METRICS:
        history = sorted(client.get_metric_history(side.model_run_id, key), key=lambda m: m.step)
        found[key] = [m.value for m in history]
    return found


def side_json(side: Side) -> dict[str, Any]:
    run, tags = side.run, side.run.data.tags
    return {
        "target": side.target, "how": side.how, "run_id": run.info.run_id,
        "run_name": run.info.run_name or "", "model_uri": side.model_uri,
        "git_commit": tags.get(TAG_GIT_COMMIT, ""), "data_digest": tags.get(TAG_DATA_DIGEST, ""),
        "metrics": test_metrics(side), "spread": seeds.spread(side.run),
    }  # fmt: skip


def build(client: MlflowClient, params: Params, a: Side, b: Side) -> tuple[dict[str, Any], Shared]:
    """The report's content (report.json) and the shared rows' scores (for the ROC)."""
    shared = shared_rows(params, a, b)
    rows = metric_rows(a, b, shared, params.retrain)
    report = {
        "a": side_json(a), "b": side_json(b), "differences": differences(a, b),
        "metrics": rows, "confidence": params.retrain.confidence,
        "shared_rows": {"n": shared.n, "reason": shared.reason},
        "verdict": verdict(a, b, shared, params.retrain, rows),
        "curves": {"a": curves(client, a), "b": curves(client, b)},
        "plots": list(render.PLOTS),
    }  # fmt: skip
    return report, shared


def compare_command(a: str, b: str, fmt: str, out: Path) -> str:
    if fmt not in FORMATS:
        raise UserError(f"compare: --format {fmt!r} is not one of {', '.join(FORMATS)}")
    params = load_params()
    experiment_id = store.connect(params.tracking)
    client = store.client()
    try:
        side_a = resolve(client, a, params, experiment_id)
        side_b = resolve(client, b, params, experiment_id)
    except TargetNotFound as exc:  # say whose error it is
        raise TargetNotFound(f"compare: {exc}") from None
    report, shared = build(client, params, side_a, side_b)
    written = render.write(report, shared, fmt, out)
    log.info("compare: %s rows shared", shared.n)
    return f"compare: {written}\n{report['verdict']['line']}"
