"""Champion vs challenger on the same rows: a paired bootstrap and the promotion rule."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from epochline.core.params import RetrainParams
from epochline.evaluation.metrics import classification_metrics
from epochline.tracking.tags import KEPT, PROMOTED

# Params that decide which rows are test rows, or what the label means: models trained under
# others can't be compared.
SPLIT_KEYS = ("split.test_size", "split.val_size", "split.seed", "data.id_column",
              "data.label_column", "data.positive_class")  # fmt: skip


@dataclass(frozen=True)
class Scores:
    """One model's answers on the shared test rows."""

    probability: np.ndarray
    label: np.ndarray

    @classmethod
    def of(cls, answers: pd.DataFrame) -> Scores:
        """From a logged model's answers (scoring.LoggedModel.score)."""
        return cls(answers["probability"].to_numpy(), answers["label"].to_numpy())


def metric_value(name: str, y: np.ndarray, scores: Scores) -> float:
    """The point estimate, computed exactly as evaluate computes its test metrics."""
    return classification_metrics(y, scores.probability, scores.label)[name]


def _label_metric(name: str, y: np.ndarray, label: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The metric on every bootstrap sample at once, from confusion counts per row of idx."""
    y, label = y[idx].astype(bool), label[idx].astype(bool)
    tp, fp = (y & label).sum(1), (~y & label).sum(1)
    fn, tn = (y & ~label).sum(1), (~y & ~label).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = {
            "accuracy": (tp + tn) / idx.shape[1],
            "precision": tp / (tp + fp),
            "recall": tp / (tp + fn),
            "f1": 2 * tp / (2 * tp + fp + fn),
        }[name]
    return np.nan_to_num(value, nan=0.0)  # sklearn's zero_division=0


def _bootstrap(name: str, y: np.ndarray, a: Scores, b: Scores, idx: np.ndarray) -> np.ndarray:
    if name != "roc_auc":
        return _label_metric(name, y, a.label, idx) - _label_metric(name, y, b.label, idx)
    diffs = [
        skm.roc_auc_score(y[i], a.probability[i]) - skm.roc_auc_score(y[i], b.probability[i])
        for i in idx
        if 0 < y[i].sum() < len(i)  # AUC needs both classes in the sample
    ]
    return np.asarray(diffs)


def paired_differences(y: np.ndarray, a: Scores, b: Scores, rule: RetrainParams) -> np.ndarray:
    """metric(a) - metric(b) on each bootstrap resample of the shared rows."""
    rng = np.random.default_rng(rule.seed)
    # Resamples in blocks of ~1M indices, so a large test set doesn't need GBs at once.
    block = max(1, 1_000_000 // len(y))
    parts = []
    for start in range(0, rule.n_bootstrap, block):
        idx = rng.integers(0, len(y), (min(block, rule.n_bootstrap - start), len(y)))
        parts.append(_bootstrap(rule.metric, y, a, b, idx))
    return np.concatenate(parts)


@dataclass(frozen=True)
class Comparison:
    metric: str
    challenger: float
    champion: float | None
    delta: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None  # one-sided: share of bootstrap samples where challenger ≤ champion
    n_rows: int
    decision: str  # "promoted" or "kept"
    reason: str

    @property
    def promoted(self) -> bool:
        return self.decision == PROMOTED

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _below(high: float) -> str:
    """Why an interval that is not above 0 fails: all of it below 0 means worse."""
    if high < 0:
        return "below 0: the challenger is worse"
    return "not above 0: could be noise"


def split_changes(then: Mapping[str, str], now: Mapping[str, str]) -> str | None:
    """`split.seed 42 -> 7`: the SPLIT_KEYS that differ; None: the same held-out rows."""
    return "; ".join(f"{k} {then[k]} -> {now[k]}" for k in SPLIT_KEYS if then[k] != now[k]) or None


def decide(
    y: np.ndarray,
    challenger: Scores,
    champion: Scores | None,
    rule: RetrainParams,
    split_changed: str | None = None,
) -> Comparison:
    """Promote only a challenger that passes the floor and beats the champion beyond noise,
    on the rows the champion was held out on too (`split_changed`: they were not)."""
    value = metric_value(rule.metric, y, challenger)
    floor_ok = value >= rule.min_metric
    if champion is None:
        reason = (
            f"no champion yet; {rule.metric} {value:.4f} "
            + ("passes" if floor_ok else "is below")
            + f" the floor retrain.min_metric = {rule.min_metric}"
        )
        decision = PROMOTED if floor_ok else KEPT
        return Comparison(
            rule.metric, value, None, None, None, None, None, len(y), decision, reason
        )

    diffs = paired_differences(y, challenger, champion, rule)
    tail = (1 - rule.confidence) / 2
    low, high = (float(q) for q in np.quantile(diffs, [tail, 1 - tail]))
    p_value = float((diffs <= 0).mean())
    base = metric_value(rule.metric, y, champion)
    delta = value - base

    interval = f"{rule.confidence:.0%} interval [{low:+.4f}, {high:+.4f}]"
    checks = [
        (delta > rule.min_delta, f"delta {delta:+.4f} > retrain.min_delta {rule.min_delta}",
         f"delta {delta:+.4f} is not above retrain.min_delta {rule.min_delta}"),
        (low > 0, f"{interval} excludes 0", f"{interval} is {_below(high)}"),
        (floor_ok, f"{rule.metric} {value:.4f} >= floor {rule.min_metric}",
         f"{rule.metric} {value:.4f} is below the floor retrain.min_metric {rule.min_metric}"),
    ]  # fmt: skip
    decision, reason = _verdict(checks, high, split_changed)
    return Comparison(rule.metric, value, base, delta, low, high, p_value, len(y), decision, reason)


def _verdict(
    checks: list[tuple[bool, str, str]], high: float, split_changed: str | None
) -> tuple[str, str]:
    """The decision and its reason: (passed, what it says when passed, when failed) checks."""
    if split_changed:
        return KEPT, f"not comparable: the champion was held out on other rows ({split_changed})"
    failed = [no for ok, _, no in checks if not ok]
    if failed:  # an interval wholly below 0 is no near miss: the challenger is worse
        return KEPT, ("worse: " if high < 0 else "not better enough: ") + "; ".join(failed)
    return PROMOTED, "better: " + "; ".join(yes for _, yes, _ in checks)
