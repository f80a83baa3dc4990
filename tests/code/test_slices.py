"""Slices and intervals of the model card against hand-checked values and scikit-learn."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from epochline.data.schema import Feature, Schema
from epochline.evaluation import intervals, slices
from epochline.evaluation.metrics import classification_metrics
from epochline.review import card
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
    ranked = slices.worst(found, 2)
    assert [s.accuracy for s in ranked] == sorted(s.accuracy for s in found)


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
    assert card._code("<missing>") == "`<missing>`"
    assert card._code("a|b") == "`a\\|b`"
    assert card._code("x`y") == "`` x`y ``"
