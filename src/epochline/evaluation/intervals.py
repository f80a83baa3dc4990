"""Percentile bootstrap intervals of the test metrics, at a fixed cost whatever the rows.

Every resample is counted, never sorted: each row belongs to one cell (its class and
answer, or its class and its run of tied probabilities in the sorted order), and a resample
is its count per cell (np.bincount), from which the metrics follow as evaluate computes
them (sklearn's definitions, ties included). Above MAX_ROWS test rows the resamples are
drawn from MAX_ROWS rows spread over the table and their spread around the estimate is
scaled by sqrt(MAX_ROWS / rows) (the m-out-of-n bootstrap): intervals narrow as 1/sqrt(n)
while evaluate's cost stops growing. At or below it, the plain percentile bootstrap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The metrics an interval is given for: those that vary with the rows drawn.
NAMES = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "pr_auc",
         "balanced_accuracy")  # fmt: skip
MAX_ROWS = 20_000
_BLOCK = 1_000_000  # draws per call of the generator (how they are split decides them)
_STEP = 160_000  # counts per step of resamples: a step's arrays stay in cache


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def row_losses(y: np.ndarray, probability: np.ndarray) -> np.ndarray:
    """Each row's log loss, clipped as sklearn's log_loss clips (to its dtype's eps)."""
    p = probability if probability.dtype.kind == "f" else probability.astype(float)
    eps = np.finfo(p.dtype).eps
    # In place, one array: at 10 M rows each pass and each new array count.
    chosen = 1 - p  # the probability given to the row's class
    np.copyto(chosen, p, where=y == 1)
    np.clip(chosen, eps, 1 - eps, out=chosen)
    return np.negative(np.log(chosen, out=chosen), out=chosen)


def label_metrics(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, tn: np.ndarray) -> dict:
    """The label metrics from confusion counts (arrays: one value per resample), with
    sklearn's zero_division=0 and balanced accuracy over the classes present."""
    with np.errstate(divide="ignore", invalid="ignore"):
        classes = (tp + fn > 0).astype(int) + (tn + fp > 0)
        found = {
            "accuracy": (tp + tn) / (tp + fp + fn + tn),
            "precision": tp / (tp + fp),
            "recall": tp / (tp + fn),
            "f1": 2 * tp / (2 * tp + fp + fn),
            "balanced_accuracy": (np.nan_to_num(tp / (tp + fn)) + np.nan_to_num(tn / (tn + fp)))
            / classes,
        }
    return {k: np.nan_to_num(v, nan=0.0) for k, v in found.items()}


def ranking_metrics(pos: np.ndarray, neg: np.ndarray) -> dict[str, np.ndarray]:
    """ROC AUC and PR AUC (average precision) from the positives and negatives of each run
    of tied probabilities, runs in ascending order along the last axis; NaN where a
    resample holds one class only (neither is defined)."""
    n_pos, n_neg = pos.sum(-1), neg.sum(-1)
    below = np.cumsum(neg, -1) - neg  # negatives with a lower probability than the run
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = (pos * (below + 0.5 * neg)).sum(-1) / (n_pos * n_neg)
        # Descending thresholds: precision at each run's threshold, weighted by its recall step.
        tp, fp = np.cumsum(pos[..., ::-1], -1), np.cumsum(neg[..., ::-1], -1)
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        ap = (pos[..., ::-1] * precision).sum(-1) / n_pos
    both = (n_pos > 0) & (n_neg > 0)
    return {"roc_auc": np.where(both, auc, np.nan), "pr_auc": np.where(both, ap, np.nan)}


def _cells(y: np.ndarray, probability: np.ndarray) -> tuple[np.ndarray, int]:
    """Each row's cell: its run of tied probabilities (ascending) times 2, plus its class."""
    p_sorted = np.sort(probability)
    starts = np.r_[True, p_sorted[1:] != p_sorted[:-1]]
    runs = p_sorted[starts]
    return np.searchsorted(runs, probability) * 2 + y.astype(np.int64), len(runs)


def _resampled(
    y: np.ndarray, probability: np.ndarray, label: np.ndarray, n: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Every metric on each of n resamples of the rows (with replacement, as many as rows)."""
    rows = len(y)
    cells, n_runs = _cells(y, probability)
    confusion = 2 * y.astype(np.int64) + label.astype(np.int64)  # 0 tn, 1 fp, 2 fn, 3 tp
    losses = row_losses(y, probability)
    block = max(1, _BLOCK // max(rows, 2 * n_runs))
    step = max(1, _STEP // max(rows, 2 * n_runs))
    parts: list[dict[str, np.ndarray]] = []
    for start in range(0, n, block):
        # Drawn a block at a time (the draws decide the numbers), counted a step at a time.
        idx = rng.integers(0, rows, (min(block, n - start), rows))
        parts += [_counted(idx[i : i + step], cells, n_runs, confusion, losses)
                  for i in range(0, len(idx), step)]  # fmt: skip
    return {k: np.concatenate([p[k] for p in parts]) for k in NAMES}


def _counted(
    idx: np.ndarray, cells: np.ndarray, n_runs: int, confusion: np.ndarray, losses: np.ndarray
) -> dict[str, np.ndarray]:
    """Every metric on the resamples that `idx` draws (a row of indices each)."""
    b = len(idx)
    offsets = np.arange(b)[:, None]
    counts = np.bincount((offsets * 4 + confusion[idx]).ravel(), minlength=4 * b)
    tn, fp, fn, tp = counts.reshape(b, 4).T
    runs = np.bincount((offsets * 2 * n_runs + cells[idx]).ravel(), minlength=2 * n_runs * b)
    per_run = runs.reshape(b, n_runs, 2)
    found = label_metrics(tp, fp, fn, tn) | ranking_metrics(per_run[..., 1], per_run[..., 0])
    return found | {"log_loss": losses[idx].mean(1)}


def bootstrap(
    y: np.ndarray,
    probability: np.ndarray,
    label: np.ndarray,
    values: dict[str, float],
    n_resamples: int,
    confidence: float,
    seed: int,
) -> dict[str, Interval | None]:
    """Each metric's interval around its value on all rows (`values`, as evaluate computed
    them); None where no resample held both classes (the AUCs)."""
    rng = np.random.default_rng(seed)
    rows = len(y)
    take = np.arange(rows)
    if rows > MAX_ROWS:  # spread over the table: the same rows on every machine
        take = np.linspace(0, rows - 1, MAX_ROWS).round().astype(np.int64)
    sub_y, sub_p, sub_label = y[take], probability[take], label[take]
    here = _resampled(sub_y, sub_p, sub_label, n_resamples, rng)
    # The estimate on the rows resampled: the resamples spread around it.
    center = _resampled_center(sub_y, sub_p, sub_label)
    scale = np.sqrt(len(take) / rows) if rows else 1.0
    tail = (1 - confidence) / 2
    found: dict[str, Interval | None] = {}
    for name in NAMES:
        drawn = here[name][~np.isnan(here[name])]
        if len(drawn) == 0:
            found[name] = None
            continue
        low, high = np.quantile(drawn, [tail, 1 - tail])
        if rows > MAX_ROWS:
            low = values[name] + scale * (low - center[name])
            high = values[name] + scale * (high - center[name])
        found[name] = Interval(float(low), float(high))
    return found


def _resampled_center(y: np.ndarray, probability: np.ndarray, label: np.ndarray) -> dict:
    """The metrics on the rows themselves, by the same counting as the resamples."""
    tn, fp, fn, tp = (np.array([np.sum(2 * y + label == c)]) for c in range(4))
    cells, n_runs = _cells(y, probability)
    per_run = np.bincount(cells, minlength=2 * n_runs).reshape(1, n_runs, 2)
    found = label_metrics(tp, fp, fn, tn) | ranking_metrics(per_run[..., 1], per_run[..., 0])
    found["log_loss"] = np.array([row_losses(y, probability).mean()])
    return {k: float(v[0]) for k, v in found.items()}
