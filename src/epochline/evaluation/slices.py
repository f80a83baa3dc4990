"""The test metrics per slice of the test rows: per category of each categorical feature
and per quantile bin of each numeric one, as the model card shows them.

Categories are cut as the model sees them (the fitted preprocessing): each category it kept,
MISSING, and OTHER for the rarer or unseen values that share one input. Numbers are cut at
the test rows' own quantiles: deciles from DECILE_ROWS test rows on, else quartiles (tens of
rows per bin either way; above QUANTILE_ROWS values the cuts come from an even sample);
tied values never straddle a cut, so bins may merge, and a feature with no more distinct
values than bins gets a slice per value; missing values are a slice of their own. A slice
with no test row is not listed; one with fewer than FEW_ROWS is flagged: its rates move by
tens of points with a handful of rows.

Vectorised: a feature's rows get a slice code, then every count is one np.bincount (ROC
AUC by ranks within each slice, after one sort of the probabilities). No loop over rows.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from epochline.data.schema import CATEGORICAL, Schema
from epochline.evaluation.intervals import row_losses
from epochline.serving.model_code import MISSING, OTHER, category_text

QUARTILES, DECILES = 4, 10
DECILE_ROWS = 1000  # deciles of at least 100 rows each
FEW_ROWS = 30
QUANTILE_ROWS = 1_000_000  # the cuts are quantiles of at most this many values
FEW = "few rows"


@dataclass(frozen=True)
class Slice:
    feature: str
    kind: str  # "numeric" or "categorical"
    name: str  # the category, MISSING, OTHER, or the bin: "[1.5, 2.25)"
    rows: int
    positives: int
    accuracy: float
    roc_auc: float | None  # None: the slice holds one class
    log_loss: float

    @property
    def few(self) -> bool:
        return self.rows < FEW_ROWS


@dataclass(frozen=True)
class Cut:
    """One feature's rows cut into slices: a code per row (-1: none) and each code's name."""

    codes: np.ndarray
    names: list[str]


def category_cut(values: pd.Series, kept: list[str]) -> Cut:
    """Each kept category, then MISSING and OTHER, as the served model's one-hot slots."""
    slots = {c: i for i, c in enumerate(kept)}
    missing, other = len(kept), len(kept) + 1
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    texts = [category_text(u) for u in uniques]
    per_value = [missing if t is None else slots.get(t, other) for t in texts] + [missing]
    return Cut(np.asarray(per_value, dtype=np.int64)[codes], [*kept, MISSING, OTHER])


def bin_count(rows: int) -> int:
    return DECILES if rows >= DECILE_ROWS else QUARTILES


def _number(value: float, digits: int) -> str:
    """A whole number in full (12345, not 1.23e+04); others in `digits` significant digits."""
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.{digits}g}"


def _texts(values: np.ndarray) -> list[str]:
    """The values in the fewest significant digits (3 to 17) that tell them all apart."""
    for digits in range(3, 18):
        texts = [_number(float(v), digits) for v in values]
        if len(set(texts)) == len(set(values.tolist())):
            return texts
    return texts


def quantile_cut(values: pd.Series, bins: int) -> Cut:
    """Bins between the values' quantiles, [low, high) with the last one closed, or one
    slice per value where there are no more values than bins; MISSING last."""
    x = values.to_numpy(dtype=np.float64, na_value=np.nan)
    gaps = np.isnan(x)
    present = x[~gaps]
    if len(present) == 0:
        return Cut(np.zeros(len(x), dtype=np.int64), [MISSING])
    low, high = present.min(), present.max()
    # The cuts from every k-th value past QUANTILE_ROWS: quantiles to a fraction of a
    # percent, at a fixed cost; every row is still binned.
    sample = present[:: -(-len(present) // QUANTILE_ROWS)]
    inner = np.unique(np.quantile(sample, np.linspace(0, 1, bins + 1)[1:-1]))
    distinct = np.sort(pd.unique(present)) if len(inner) < bins - 1 else None  # cuts merged
    if distinct is not None and len(distinct) <= bins:  # a code, a count, a 0/1 flag
        names = _texts(distinct)
        codes = np.searchsorted(distinct, np.where(gaps, low, x))
    else:
        inner = inner[(inner > low) & (inner <= high)]  # a cut at the minimum: an empty bin
        edges = _texts(np.array([low, *inner, high]))
        names = [f"[{a}, {b})" for a, b in itertools.pairwise(edges[:-1])]
        names.append(f"[{edges[-2]}, {edges[-1]}]")
        codes = np.searchsorted(inner, np.where(gaps, low, x), side="right")
    codes[gaps] = len(names)
    return Cut(codes, [*names, MISSING])


@dataclass(frozen=True)
class Answers:
    """The test rows' classes and the model's answers, with what every cut reuses."""

    y: np.ndarray  # 0/1
    probability: np.ndarray
    label: np.ndarray  # 0/1
    order: np.ndarray  # sorts the probabilities (stable)
    losses: np.ndarray  # each row's log loss

    @classmethod
    def of(cls, y: np.ndarray, probability: np.ndarray, label: np.ndarray) -> Answers:
        y = np.asarray(y).astype(np.int64)
        probability = np.asarray(probability, dtype=np.float64)
        order = np.argsort(probability, kind="stable")
        return cls(y, probability, np.asarray(label).astype(np.int64), order,
                   row_losses(y, probability))  # fmt: skip


def _auc_per_code(codes: np.ndarray, answers: Answers, n: int) -> np.ndarray:
    """ROC AUC within each code (Mann-Whitney, ties counted half, as sklearn's); NaN where
    a code holds one class. The rows sorted by probability, then (stable, a radix sort on
    small codes) by code: each code's rows in probability order, one pass each after that."""
    small = codes.astype(np.int16 if n < 2**15 else np.int64)
    by_code = answers.order[np.argsort(small[answers.order], kind="stable")]
    g, p = small[by_code], answers.probability[by_code]
    yy = answers.y[by_code].astype(np.float64)
    new_run = np.empty(len(g), dtype=bool)  # a new code or a higher probability
    new_run[:1] = True
    np.not_equal(p[1:], p[:-1], out=new_run[1:])
    new_run[1:] |= g[1:] != g[:-1]
    neg_before = np.cumsum(1 - yy) - (1 - yy)
    first_row = np.searchsorted(g, np.arange(n))  # each code's first row (g is sorted)
    code_start = np.r_[neg_before, 0.0][first_row]
    # Negatives strictly below a row in its code: those below its run's first row.
    run_first = np.maximum.accumulate(np.where(new_run, np.arange(len(g)), 0))
    u = np.bincount(g, yy * (neg_before[run_first] - code_start[g]), n)
    tied = ~new_run | np.r_[~new_run[1:], False]  # rows in runs of two or more
    if tied.any():  # ties count half: 1/2 * positives * negatives of each tied run
        at = np.flatnonzero(tied)
        run = np.cumsum(new_run[at]) - 1
        pos, neg = np.bincount(run, yy[at]), np.bincount(run, 1 - yy[at])
        u += np.bincount(g[at][new_run[at]], 0.5 * pos * neg, n)
    pos, neg = np.bincount(g, yy, n), np.bincount(g, 1 - yy, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((pos > 0) & (neg > 0), u / (pos * neg), np.nan)


def cut_slices(feature: str, kind: str, cut: Cut, answers: Answers) -> list[Slice]:
    """The metrics of each slice of `cut` that holds rows, in the cut's order."""
    n = len(cut.names)
    rows = np.bincount(cut.codes, minlength=n)
    positives = np.bincount(cut.codes, answers.y, n)
    correct = np.bincount(cut.codes, (answers.y == answers.label).astype(np.float64), n)
    loss = np.bincount(cut.codes, answers.losses, n)
    auc = _auc_per_code(cut.codes, answers, n)
    found = []
    for i in np.flatnonzero(rows):  # slices with rows: a handful, not rows
        roc_auc = None if np.isnan(auc[i]) else float(auc[i])
        accuracy, log_loss = float(correct[i] / rows[i]), float(loss[i] / rows[i])
        found.append(Slice(feature, kind, cut.names[i], int(rows[i]), int(positives[i]),
                           accuracy, roc_auc, log_loss))  # fmt: skip
    return found


def slices(
    test: pd.DataFrame, answers: Answers, schema: Schema, features: list[dict[str, Any]]
) -> list[Slice]:
    """Every feature's slices, in the schema's order; `features`: the fitted preprocessing's
    specs (data/preprocessor.json), whose kept categories the model has inputs for."""
    kept = {f["name"]: list(f["categories"]) for f in features if f["kind"] == "categorical"}
    bins = bin_count(len(test))
    found: list[Slice] = []
    for f in schema.features:
        values = test[f.name]
        cut = (category_cut(values, kept[f.name]) if f.kind == CATEGORICAL
               else quantile_cut(values, bins))  # fmt: skip
        found += cut_slices(f.name, f.kind, cut, answers)
    return found


def worst(found: list[Slice], k: int) -> list[Slice]:
    """The k slices with the lowest accuracy; ties: fewer rows first, then as listed."""
    ranked = sorted(enumerate(found), key=lambda s: (s[1].accuracy, s[1].rows, s[0]))
    return [s for _, s in ranked[:k]]
