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

Vectorised, at a fixed number of passes over the rows per feature (10 M rows: ~0.15 s a
feature): a feature's rows get a slice code (a comparison per cut), the counts are
np.bincount, and ROC AUC is the rank sum of each slice's positives: the rows are sorted once
by probability (then class, negatives first), and per feature by code with their position in
that order packed in one int32 (a SIMD sort, not a stable argsort of floats); pairs of rows
with tied probabilities (listed once, or sorted per run when a run is long) count half. Every
number is the one the plain definitions give (tests/code/test_slices.py checks them against
scikit-learn and np.quantile); only the cuts above QUANTILE_ROWS values are from a sample.
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
_BLOCK = 1 << 16  # values compared at a time: a block and its flags stay in cache
FEW_TIED = 4  # a run of tied probabilities this long or shorter: its pairs are listed
_PACKED_BITS = 31  # a code and a position packed in an int32 key, where they fit


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


def _small(codes: np.ndarray, n: int) -> np.ndarray:
    """Codes in the smallest integers that hold n of them: less memory to gather and sort."""
    return codes.astype(np.int8 if n < 2**7 else np.int16 if n < 2**15 else np.int64, copy=False)


def category_cut(values: pd.Series, kept: list[str]) -> Cut:
    """Each kept category, then MISSING and OTHER, as the served model's one-hot slots."""
    slots = {c: i for i, c in enumerate(kept)}
    missing, other = len(kept), len(kept) + 1
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    texts = [category_text(u) for u in uniques]
    per_value = [missing if t is None else slots.get(t, other) for t in texts] + [missing]
    names = [*kept, MISSING, OTHER]
    return Cut(_small(np.asarray(per_value), len(names))[codes], names)


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


def _few_values(present: np.ndarray, sample: np.ndarray, bins: int) -> np.ndarray | None:
    """The values' distinct ones (sorted) when there are at most `bins`, else None: read off
    the sample, then every value checked against them (a rare one the sample skipped)."""
    found = np.unique(sample)
    if len(found) > bins:
        return None
    if len(sample) < len(present):  # a value the sample skipped: it needs a slice too
        seen = sum(np.count_nonzero(present == v) for v in found)
        if seen < len(present):
            found = np.unique(present)
    return found if len(found) <= bins else None


def _below(x: np.ndarray, edges: np.ndarray, *, strict: bool) -> np.ndarray:
    """How many edges lie below each value (strict) or at or below it: np.searchsorted's
    left (right) side, by a comparison per edge (a handful) instead of a binary search per
    value, a block of values at a time (it stays in cache for every edge); NaN gets 0."""
    codes = np.zeros(len(x), dtype=np.int8)
    hit = np.empty(min(len(x), _BLOCK), dtype=bool)
    compare = np.greater if strict else np.greater_equal
    for i in range(0, len(x), _BLOCK):
        part, into = x[i : i + _BLOCK], codes[i : i + _BLOCK]
        for edge in edges:
            into += compare(part, edge, out=hit[: len(part)])
    return codes


def quantile_cut(values: pd.Series, bins: int) -> Cut:
    """Bins between the values' quantiles, [low, high) with the last one closed, or one
    slice per value where there are no more values than bins; MISSING last."""
    x = values.to_numpy(dtype=np.float64, na_value=np.nan)
    gaps = np.isnan(x)
    present = x[~gaps] if gaps.any() else x
    if len(present) == 0:
        return Cut(np.zeros(len(x), dtype=np.int8), [MISSING])
    low, high = present.min(), present.max()
    # The cuts from every k-th value past QUANTILE_ROWS: quantiles to a fraction of a
    # percent, at a fixed cost; every row is still binned. Sorted first: np.quantile's
    # partition of sorted values is nearly free, and a SIMD sort is faster than it.
    sample = np.sort(present[:: -(-len(present) // QUANTILE_ROWS)])
    inner = np.unique(np.quantile(sample, np.linspace(0, 1, bins + 1)[1:-1]))
    distinct = _few_values(present, sample, bins) if len(inner) < bins - 1 else None  # merged
    if distinct is not None:  # a code, a count, a 0/1 flag
        names = _texts(distinct)
        codes = _below(x, distinct, strict=True)
    else:
        inner = inner[(inner > low) & (inner <= high)]  # a cut at the minimum: an empty bin
        edges = _texts(np.array([low, *inner, high]))
        names = [f"[{a}, {b})" for a, b in itertools.pairwise(edges[:-1])]
        names.append(f"[{edges[-2]}, {edges[-1]}]")
        codes = _below(x, inner, strict=False)
    codes[gaps] = len(names)
    return Cut(codes, [*names, MISSING])


@dataclass(frozen=True)
class Ties:
    """The runs of tied probabilities that hold both classes (negatives first in each), in
    the probability order: the short ones as their (negative, positive) pairs, the rows of
    the longer ones (whose pairs could number rows squared) with their run."""

    pairs: np.ndarray  # 2 x pairs: the negative's position, the positive's
    crowded: np.ndarray  # positions of the rows of the runs longer than FEW_TIED
    crowded_run: np.ndarray  # the run of each
    crowded_positive: np.ndarray  # 1 where it is a positive

    @classmethod
    def of(cls, new_run: np.ndarray, positive: np.ndarray) -> Ties:
        first = np.flatnonzero(new_run)
        size = np.diff(np.r_[first, len(positive)])
        mixed = ~positive[first] & positive[first + size - 1]  # a negative first, a positive last
        short, long = mixed & (size <= FEW_TIED), mixed & (size > FEW_TIED)
        run = np.repeat(np.arange(np.count_nonzero(long)), size[long])
        crowded = _ranges(first[long], size[long])
        pairs = _pairs(first[short], size[short], positive)
        return cls(pairs, crowded, run, positive[crowded].astype(np.int64))


def _ranges(first: np.ndarray, size: np.ndarray) -> np.ndarray:
    """first[0], first[0] + 1, ... (size[0] of them), then the same for each next one."""
    return np.arange(size.sum()) + np.repeat(first - (np.cumsum(size) - size), size)


def _pairs(first: np.ndarray, size: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Each run's (negative, positive) pairs of rows, for runs of at most FEW_TIED rows."""
    found = [np.empty((2, 0), dtype=np.int64)]
    for a, b in itertools.combinations(range(FEW_TIED), 2):
        at = first[size > b]
        at = at[~positive[at + a] & positive[at + b]]
        found.append(np.stack([at + a, at + b]))
    return np.concatenate(found, axis=1)


@dataclass(frozen=True)
class Answers:
    """The test rows' classes and the model's answers, with what every cut reuses: the rows
    in probability order and the rows whose probability ties with the other class's."""

    y: np.ndarray  # 0/1
    probability: np.ndarray
    label: np.ndarray  # 0/1
    order: np.ndarray  # the rows by probability, then class (negatives first), then row
    losses: np.ndarray  # each row's log loss
    correct: np.ndarray  # 1.0 where the label is the class
    positive: np.ndarray  # in `order`: True where the class is 1
    ties: Ties

    @classmethod
    def of(cls, y: np.ndarray, probability: np.ndarray, label: np.ndarray) -> Answers:
        y = np.asarray(y).astype(np.int64)
        probability = np.asarray(probability, dtype=np.float64)
        label = np.asarray(label).astype(np.int64)
        order, new_run, positive = _order(probability, y)
        correct = (y == label).astype(np.float64)
        return cls(y, probability, label, order, row_losses(y, probability), correct, positive,
                   Ties.of(new_run, positive))  # fmt: skip


def _order(probability: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    """The rows by probability, then class, then row; where each run of tied probabilities
    starts in that order; and where the positives are in it."""
    n = len(probability)
    order: np.ndarray
    single = probability.astype(np.float32)
    if n < 2**31 and np.array_equal(single, probability) and not np.signbit(single).any():
        # A model's float32 answers (ours): the three keys packed in one int64 (a float32's
        # bits order as it does when it is not negative) and sorted by value, a SIMD sort
        # ~25x faster than a stable argsort of 10 M floats.
        key = single.view(np.int32).astype(np.int64) << 32 | y << 31 | np.arange(n)
        key.sort()
        order, value = (key & (2**31 - 1)).astype(np.int32), key >> 32  # int32: faster gathers
        positive = (key & 2**31) != 0
    else:
        order = np.lexsort((y, probability))
        value, positive = probability[order], y[order] == 1
    new_run = np.empty(n, dtype=bool)
    new_run[:1] = True
    np.not_equal(value[1:], value[:-1], out=new_run[1:])
    return order, new_run, positive


def _tied_pairs(sorted_codes: np.ndarray, ties: Ties, n: int) -> np.ndarray:
    """Per code, its (negative, positive) pairs of rows with the same probability."""
    codes = sorted_codes[ties.pairs]
    found = np.bincount(codes[0][codes[0] == codes[1]], minlength=n).astype(np.float64)
    if len(ties.crowded) == 0:
        return found
    key = (ties.crowded_run * n + sorted_codes[ties.crowded]) * 2 + ties.crowded_positive
    key.sort()  # each (run, code)'s negatives, then its positives
    first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    size = np.diff(np.r_[first, len(key)])
    group = key[first] >> 1
    both = group[1:] == group[:-1]
    return found + np.bincount(group[1:][both] % n, size[1:][both] * size[:-1][both], n)


def _by_code(sorted_codes: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The positions of `sorted_codes` grouped by code, each code's in ascending order, and
    where each code's group starts (n + 1 bounds)."""
    size = len(sorted_codes)
    shift = max(size - 1, 1).bit_length()
    if shift + max(n - 1, 1).bit_length() <= _PACKED_BITS:
        # (code, position) packed in one int32 and sorted by value: a SIMD sort, faster than
        # a stable argsort of the codes, and int32 positions are faster to gather with.
        key = sorted_codes.astype(np.int32) << shift | np.arange(size, dtype=np.int32)
        key.sort()
        bounds = np.arange(n, dtype=np.int32) << shift
        return key & np.int32((1 << shift) - 1), np.r_[np.searchsorted(key, bounds), size]
    by_code = np.argsort(sorted_codes, kind="stable")  # a radix sort of small ints
    codes = sorted_codes[by_code]
    return by_code, np.r_[np.searchsorted(codes, np.arange(n, dtype=codes.dtype)), size]


def _per_code(sorted_codes: np.ndarray, answers: Answers, n: int) -> tuple[np.ndarray, ...]:
    """Each code's rows, positives and ROC AUC (Mann-Whitney, ties counted half, as
    sklearn's; NaN where a code holds one class). `sorted_codes`: the codes in
    `answers.order`. Each code's rows in that order: the positives' rank sum counts the
    pairs where a negative comes first, and a tied pair (negatives first) counts half."""
    by_code, start = _by_code(sorted_codes, n)
    at = np.flatnonzero(answers.positive[by_code])  # where the positives are
    cut = np.searchsorted(at, start)
    rows, pos = np.diff(start), np.diff(cut)
    ranks = np.zeros(n, dtype=np.int64)  # the positives' positions within their code, summed
    ranks[pos > 0] = np.add.reduceat(at, cut[:-1][pos > 0]) - (pos * start[:-1])[pos > 0]
    u = (ranks - pos * (pos - 1) // 2) - 0.5 * _tied_pairs(sorted_codes, answers.ties, n)
    neg = rows - pos
    with np.errstate(divide="ignore", invalid="ignore"):
        return rows, pos, np.where((pos > 0) & (neg > 0), u / (pos * neg), np.nan)


def cut_slices(feature: str, kind: str, cut: Cut, answers: Answers) -> list[Slice]:
    """The metrics of each slice of `cut` that holds rows, in the cut's order."""
    n = len(cut.names)
    codes = cut.codes.astype(np.intp)  # bincount's own type: converted once, not per count
    correct = np.bincount(codes, answers.correct, n)
    loss = np.bincount(codes, answers.losses, n)
    rows, positives, auc = _per_code(_small(cut.codes, n)[answers.order], answers, n)
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
    """The k slices with the lowest accuracy; ties: fewer rows first, then as listed. Slices
    of fewer than FEW_ROWS come after the others: a slice of 2 rows at 0.0 says little, and
    a few of them would push every slice worth a look off the table."""
    ranked = sorted(enumerate(found), key=lambda s: (s[1].few, s[1].accuracy, s[1].rows, s[0]))
    return [s for _, s in ranked[:k]]
