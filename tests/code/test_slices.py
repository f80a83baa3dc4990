"""Slices and intervals of the model card against hand-checked values and scikit-learn."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from epochline.data.schema import Feature, Schema
from epochline.evaluation import card, intervals, slices
from epochline.evaluation.metrics import classification_metrics
from epochline.serving.model_code import MISSING, OTHER


def answers(n: int, seed: int, decimals: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, probabilities rounded to force ties, and the labels a 0.5 threshold gives."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.round(np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1), decimals)
    return y, p, (p >= 0.5).astype(np.int64)


def test_quantile_bins_hand_checked() -> None:
    cut = slices.quantile_cut(pd.Series(np.arange(8.0)), 4)
    assert cut.names == ["[0, 1.75)", "[1.75, 3.5)", "[3.5, 5.25)", "[5.25, 7]", MISSING]
    assert cut.codes.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_tied_values_never_straddle_a_cut() -> None:
    values = pd.Series([0.0] * 50 + list(range(1, 50)))
    cut = slices.quantile_cut(values, 4)
    zeros = cut.codes[:50]
    assert len(set(zeros.tolist())) == 1  # every 0 in one bin
    assert cut.names == ["[0, 24.5)", "[24.5, 49]", MISSING]


def test_few_distinct_values_get_a_slice_each_and_missing_its_own() -> None:
    cut = slices.quantile_cut(pd.Series([0, 0, 0, 1, 1, None, 0], dtype="Float64"), 4)
    assert cut.names == ["0", "1", MISSING]
    assert cut.codes.tolist() == [0, 0, 0, 1, 1, 2, 0]


def test_a_constant_or_empty_column_is_one_slice() -> None:
    assert slices.quantile_cut(pd.Series([3.5] * 9), 4).names == ["3.5", MISSING]
    empty = slices.quantile_cut(pd.Series([np.nan] * 4), 4)
    assert empty.names == [MISSING] and empty.codes.tolist() == [0, 0, 0, 0]


def test_edges_get_the_digits_that_tell_them_apart() -> None:
    cut = slices.quantile_cut(pd.Series([1.00001, 1.00002, 1.00003, 1.00004, 1.00005] * 3), 4)
    assert cut.names[0].startswith("[1.00001, ")
    assert slices.quantile_cut(pd.Series(np.arange(0.0, 2e6, 1e5)), 4).names[0] == "[0, 475000)"


def test_deciles_from_a_thousand_rows() -> None:
    assert slices.bin_count(999) == slices.QUARTILES
    assert slices.bin_count(1000) == slices.DECILES


def test_categories_as_the_model_sees_them_capped_into_other() -> None:
    values = pd.Series(["a", "b", None, "z", "a", 3, "y"], dtype=object)
    cut = slices.category_cut(values, ["3", "a", "b"])
    assert cut.names == ["3", "a", "b", MISSING, OTHER]
    assert cut.codes.tolist() == [1, 2, 3, 4, 1, 0, 4]


def test_slice_metrics_match_scikit_learn() -> None:
    y, p, label = answers(600, 1)
    codes = np.random.default_rng(2).integers(0, 5, len(y))
    cut = slices.Cut(codes, ["a", "b", "c", "d", "e"])
    found = slices.cut_slices("f", "categorical", cut, slices.Answers.of(y, p, label))
    assert [s.name for s in found] == ["a", "b", "c", "d", "e"]
    for i, s in enumerate(found):
        rows = codes == i
        assert s.rows == rows.sum() and s.positives == y[rows].sum()
        assert s.accuracy == pytest.approx(skm.accuracy_score(y[rows], label[rows]), abs=1e-12)
        assert s.roc_auc == pytest.approx(skm.roc_auc_score(y[rows], p[rows]), abs=1e-12)
        assert s.log_loss == pytest.approx(skm.log_loss(y[rows], p[rows], labels=[0, 1]))


def test_one_class_slices_have_no_auc_and_empty_ones_are_not_listed() -> None:
    y = np.array([1, 1, 0, 1, 0, 0])
    p = np.array([0.9, 0.8, 0.2, 0.6, 0.4, 0.7])
    cut = slices.Cut(np.array([0, 0, 2, 2, 2, 2]), ["only positives", "empty", "both"])
    found = slices.cut_slices("f", "categorical", cut, slices.Answers.of(y, p, p >= 0.5))
    assert [(s.name, s.rows, s.roc_auc) for s in found] == [
        ("only positives", 2, None),
        ("both", 4, pytest.approx(skm.roc_auc_score(y[2:], p[2:]))),
    ]


def test_small_slices_are_flagged_and_the_worst_come_first() -> None:
    y, p, label = answers(100, 3)
    codes = np.r_[np.zeros(80, dtype=np.int64), np.ones(20, dtype=np.int64)]
    found = slices.cut_slices("f", "numeric", slices.Cut(codes, ["big", "small"]),
                              slices.Answers.of(y, p, label))  # fmt: skip
    assert [s.few for s in found] == [False, True]
    assert [s.name for s in slices.worst(found, 2)] == ["big", "small"]  # few rows: after


def test_slices_of_few_rows_come_after_the_others_in_the_worst() -> None:
    y, p, label = answers(100, 3)
    wrong = 1 - label  # the 3 rows of slice "tiny" all answered wrong: accuracy 0
    label = np.r_[label[:97], wrong[97:]]
    codes = np.r_[np.zeros(60, dtype=np.int64), np.ones(37, dtype=np.int64), np.full(3, 2)]
    found = slices.cut_slices("f", "numeric", slices.Cut(codes, ["a", "b", "tiny"]),
                              slices.Answers.of(y, p, label))  # fmt: skip
    assert found[2].accuracy == 0.0 and found[2].few
    assert [s.name for s in slices.worst(found, 2)] == sorted(
        ["a", "b"], key=lambda n: next(s.accuracy for s in found if s.name == n)
    )
    assert slices.worst(found, 3)[-1].name == "tiny"


def test_every_feature_sliced_in_the_schemas_order() -> None:
    rng = np.random.default_rng(4)
    test = pd.DataFrame({"n": rng.normal(size=40), "c": rng.choice(["a", "b", "q"], 40)})
    kinds = (Feature("n", "numeric", "number"), Feature("c", "categorical", "text"))
    schema = Schema(("n", "c", "label"), "label", None, kinds)
    y, p, label = answers(40, 5)
    numeric: dict[str, Any] = {"name": "n", "kind": "numeric", "fill": 0.0, "indicator": False}
    specs = [numeric, {"name": "c", "kind": "categorical", "categories": ["a", "b"]}]
    found = slices.slices(test, slices.Answers.of(y, p, label), schema, specs)
    assert [s.feature for s in found] == ["n"] * 4 + ["c"] * 3
    assert [s.name for s in found[4:]] == ["a", "b", OTHER]
    assert sum(s.rows for s in found[:4]) == sum(s.rows for s in found[4:]) == 40


@pytest.mark.parametrize("n", [30, 200])
def test_interval_center_is_evaluates_metric_and_holds_it(n: int) -> None:
    y, p, label = answers(n, 6)
    values = classification_metrics(y, p, label)
    found = intervals.bootstrap(y, p, label, values, 500, 0.9, 7)
    again = intervals.bootstrap(y, p, label, values, 500, 0.9, 7)
    assert found == again  # the seed decides every resample
    for name in intervals.NAMES:
        ranged = found[name]
        assert ranged is not None
        assert ranged.low <= values[name] + 1e-9 and values[name] - 1e-9 <= ranged.high, name


def test_resampled_metrics_are_scikit_learns_on_the_resample() -> None:
    """The counting gives what scikit-learn gives on the same drawn rows (ties included)."""
    y, p, label = answers(60, 8)
    drawn = intervals._resampled(y, p, label, 5, np.random.default_rng(9))
    idx = np.random.default_rng(9).integers(0, len(y), (5, len(y)))
    for k, rows in enumerate(idx):
        expected = classification_metrics(y[rows], p[rows], label[rows])
        for name in intervals.NAMES:
            assert drawn[name][k] == pytest.approx(expected[name], abs=1e-12), name


def test_above_max_rows_the_interval_narrows_around_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    y, p, label = answers(4000, 10, decimals=3)
    values = classification_metrics(y, p, label)
    whole = intervals.bootstrap(y, p, label, values, 400, 0.95, 1)
    monkeypatch.setattr(intervals, "MAX_ROWS", 1000)
    scaled = intervals.bootstrap(y, p, label, values, 400, 0.95, 1)
    for name in ("accuracy", "roc_auc"):
        a, b = whole[name], scaled[name]
        assert a is not None and b is not None
        assert b.low < values[name] < b.high
        # Resampled from a quarter of the rows, scaled by sqrt(1/4): about the same width.
        assert 0.5 < (b.high - b.low) / (a.high - a.low) < 2, name


def test_markdown_cells_keep_angle_brackets_and_pipes_visible() -> None:
    assert card.code_span("<missing>") == "`<missing>`"
    assert card.code_span("a|b") == "`a\\|b`"
    assert card.code_span("x`y") == "`` x`y ``"


# --- the fast paths against the straightforward definitions, across every threshold


def tied_answers(n: int, seed: int, single: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Probabilities tied in long runs (rounded to 2 places) and in short ones (float32 at
    random: a few rows each), or float64 ones that float32 cannot hold (the general sort)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.clip(0.25 * y + 0.75 * rng.random(n), 0, 1)
    if single:
        p = np.where(rng.random(n) < 0.3, np.round(p, 2), np.float32(p * 1e-3) * 1e3)
        p = p.astype(np.float32).astype(np.float64)
    else:
        p = np.where(rng.random(n) < 0.3, np.round(p, 2), p + 1e-12)
    return y, p, (p >= 0.5).astype(np.int64)


def expected_slice(y: np.ndarray, p: np.ndarray, label: np.ndarray) -> tuple:
    roc = skm.roc_auc_score(y, p) if 0 < y.sum() < len(y) else None
    return (len(y), int(y.sum()), skm.accuracy_score(y, label), roc,
            skm.log_loss(y, p, labels=[0, 1]))  # fmt: skip


@pytest.mark.parametrize("single", [True, False])
@pytest.mark.parametrize("n", [1, 2, 5, 60, 700, 70_000])
def test_slice_metrics_are_scikit_learns_with_ties_and_empty_slices(n: int, single: bool) -> None:
    y, p, label = tied_answers(n, n, single)
    rng = np.random.default_rng(n + 1)
    codes = rng.choice([0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11], n)  # 3: no row
    codes[y == 1] = np.where(codes[y == 1] == 11, 10, codes[y == 1])  # 11: negatives only
    cut = slices.Cut(codes, [f"s{i}" for i in range(12)])
    found = slices.cut_slices("f", "numeric", cut, slices.Answers.of(y, p, label))
    assert [s.name for s in found] == [f"s{i}" for i in sorted(set(codes.tolist()))]
    for s in found:
        rows = codes == int(s.name[1:])
        want = expected_slice(y[rows], p[rows], label[rows])
        assert (s.rows, s.positives) == want[:2]
        assert s.accuracy == pytest.approx(want[2], abs=1e-12)
        assert s.roc_auc == (None if want[3] is None else pytest.approx(want[3], abs=1e-12))
        assert s.log_loss == pytest.approx(want[4], rel=1e-9)


def test_the_unpacked_sort_by_code_gives_the_same_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past what an int32 key holds (a code and a position), a stable argsort does it."""
    y, p, label = tied_answers(3000, 12, True)
    cut = slices.Cut(np.random.default_rng(13).integers(0, 7, 3000), list("abcdefg"))
    packed = slices.cut_slices("f", "numeric", cut, slices.Answers.of(y, p, label))
    monkeypatch.setattr(slices, "_PACKED_BITS", 8)
    assert slices.cut_slices("f", "numeric", cut, slices.Answers.of(y, p, label)) == packed


@pytest.mark.parametrize("few_tied", [1, 2, 4, 8])
def test_tied_pairs_listed_or_sorted_count_the_same(
    monkeypatch: pytest.MonkeyPatch, few_tied: int
) -> None:
    """Runs of tied probabilities up to FEW_TIED rows are paired row by row, longer ones
    sorted by code: where the line falls changes no number."""
    y, p, label = answers(2000, 14, decimals=3)  # runs of 1 to ~8 rows
    cut = slices.Cut(np.random.default_rng(15).integers(0, 5, 2000), list("abcde"))
    monkeypatch.setattr(slices, "FEW_TIED", few_tied)
    found = slices.cut_slices("f", "numeric", cut, slices.Answers.of(y, p, label))
    for s in found:
        rows = cut.codes == "abcde".index(s.name)
        assert s.roc_auc == pytest.approx(skm.roc_auc_score(y[rows], p[rows]), abs=1e-12)


def reference_cut(x: np.ndarray, bins: int, most: int) -> tuple[list[float], np.ndarray]:
    """quantile_cut's bins by the book: np.quantile of every k-th present value (at most
    `most` of them), the distinct values when there are no more than bins; np.searchsorted."""
    present = x[~np.isnan(x)]
    sample = present[:: -(-len(present) // most)]
    inner = np.unique(np.quantile(sample, np.linspace(0, 1, bins + 1)[1:-1]))
    distinct = np.unique(present)
    if len(inner) < bins - 1 and len(distinct) <= bins:
        codes = np.searchsorted(distinct, np.nan_to_num(x, nan=present.min()))
        return distinct.tolist(), np.where(np.isnan(x), len(distinct), codes)
    inner = inner[(inner > present.min()) & (inner <= present.max())]
    codes = np.searchsorted(inner, np.nan_to_num(x, nan=present.min()), side="right")
    return inner.tolist(), np.where(np.isnan(x), len(inner) + 1, codes)


@pytest.mark.parametrize("n", [9, 300, 70_000, 140_001])
@pytest.mark.parametrize("kind", ["normal", "ties", "flag", "rare"])
def test_quantile_bins_are_np_quantiles_cuts(
    monkeypatch: pytest.MonkeyPatch, n: int, kind: str
) -> None:
    """Above QUANTILE_ROWS (here 50 000) the cuts come from a sample; every row is binned,
    and a value the sample skipped still gets its slice (`rare`: one row of 7)."""
    monkeypatch.setattr(slices, "QUANTILE_ROWS", 50_000)
    rng = np.random.default_rng(n)
    x = {"normal": rng.normal(size=n), "ties": np.round(rng.normal(size=n), 1),
         "flag": rng.integers(0, 2, n).astype(float),
         "rare": np.r_[rng.integers(0, 2, n - 1), 7.0]}[kind]  # fmt: skip
    x[rng.random(n) < 0.1] = np.nan
    cut = slices.quantile_cut(pd.Series(x), slices.bin_count(n))
    edges, codes = reference_cut(x, slices.bin_count(n), 50_000)
    assert cut.codes.tolist() == codes.tolist()
    assert len(cut.names) == (len(edges) if kind in ("flag", "rare") else len(edges) + 1) + 1


def test_resampled_in_steps_as_in_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """The resamples are counted a few at a time; the same draws give the same numbers."""
    y, p, label = answers(3001, 16, decimals=3)
    values = classification_metrics(y, p, label)
    stepped = intervals.bootstrap(y, p, label, values, 300, 0.9, 3)
    monkeypatch.setattr(intervals, "_STEP", 10**9)
    assert intervals.bootstrap(y, p, label, values, 300, 0.9, 3) == stepped


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_row_losses_are_the_clipped_log_loss(dtype: type) -> None:
    y = np.array([0, 1, 0, 1, 1, 0])
    p = np.array([0.0, 1.0, 1.0, 0.0, 0.25, 0.25], dtype=dtype)
    eps = np.finfo(dtype).eps
    chosen = np.where(y == 1, p, 1 - p).clip(eps, 1 - eps)
    found = intervals.row_losses(y, p)
    assert found.dtype == dtype and found.tolist() == (-np.log(chosen)).tolist()
    assert found.mean() == pytest.approx(skm.log_loss(y, p, labels=[0, 1]), rel=1e-6)
