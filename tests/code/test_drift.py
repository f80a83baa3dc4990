"""Drift of new rows against the reference: PSI over quantile bins, plus the KS test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from epochline.data.sources import feature_names, make_synthetic
from epochline.retrain.drift import PSI_WARN, feature_drift, label_shift, psi

N = 3000


def _normal(mean: float, seed: int, n: int = N) -> np.ndarray:
    return np.random.default_rng(seed).normal(mean, 1.0, n)


def test_psi_of_a_sample_against_itself_is_zero() -> None:
    sample = _normal(0, seed=1)
    assert psi(sample, sample) == pytest.approx(0, abs=1e-12)


def test_psi_of_two_samples_of_one_distribution_is_small() -> None:
    assert psi(_normal(0, seed=1), _normal(0, seed=2)) < 0.05


@pytest.mark.parametrize(("shift", "low"), [(1.0, PSI_WARN), (-1.0, PSI_WARN), (3.0, 2.0)])
def test_psi_of_a_shifted_normal_is_large(shift: float, low: float) -> None:
    assert psi(_normal(0, seed=1), _normal(shift, seed=2)) > low


def test_psi_grows_with_the_shift() -> None:
    reference = _normal(0, seed=1)
    values = [psi(reference, _normal(0, seed=2) + shift) for shift in (0.0, 0.25, 0.5, 1.0, 2.0)]
    assert values == sorted(values)
    assert values[0] < 0.1 < values[2]


@pytest.mark.parametrize("new", [np.zeros(50), np.linspace(-5, 5, 50)])
def test_psi_of_a_constant_reference_is_zero(new: np.ndarray) -> None:
    assert psi(np.full(100, 3.0), new) == 0.0


@pytest.mark.parametrize("side", [1, -1])
def test_new_values_beyond_the_reference_range_count(side: int) -> None:
    reference = _normal(0, seed=1)
    beyond = side * (np.abs(reference).max() + 1 + np.arange(100))
    # All the new mass sits in one outer bin (10% of the reference): PSI ≈ (1 - 0.1) ln 10 + …
    assert psi(reference, beyond) > 2.0


def test_psi_with_fewer_bins_still_separates() -> None:
    reference = _normal(0, seed=1)
    assert psi(reference, reference, bins=3) == pytest.approx(0, abs=1e-12)
    assert psi(reference, _normal(1, seed=2), bins=3) > PSI_WARN


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    features = feature_names(4)
    reference = make_synthetic(N, 4, seed=3)
    new = make_synthetic(N, 4, seed=3, stream=(1,))
    new["x2"] = new["x2"] + reference["x2"].std()  # one standard deviation, one feature only
    return reference, new, features


def test_feature_drift_has_one_row_per_feature(
    frames: tuple[pd.DataFrame, pd.DataFrame, list[str]],
) -> None:
    reference, new, features = frames
    rows = feature_drift(reference, new, features)
    assert [row["feature"] for row in rows] == features
    for row in rows:
        assert set(row) == {
            "feature",
            "kind",
            "psi",
            "test",
            "statistic",
            "p_value",
            "new_categories",
            "missing_reference",
            "missing_new",
            "drifted",
        }
        assert isinstance(row["drifted"], bool)
        assert row["psi"] >= 0 and row["test"] == "ks"
        assert 0 <= row["statistic"] <= 1
        assert 0 <= row["p_value"] <= 1


def test_feature_drift_flags_only_the_shifted_feature(
    frames: tuple[pd.DataFrame, pd.DataFrame, list[str]],
) -> None:
    reference, new, features = frames
    rows = {row["feature"]: row for row in feature_drift(reference, new, features)}
    assert [name for name, row in rows.items() if row["drifted"]] == ["x2"]
    assert rows["x2"]["psi"] > PSI_WARN
    assert rows["x2"]["p_value"] < 1e-6
    for name in ("x0", "x1", "x3"):
        assert rows[name]["psi"] < 0.1
        assert rows[name]["statistic"] < rows["x2"]["statistic"] / 3


def test_feature_drift_of_a_table_against_itself_is_clean(
    frames: tuple[pd.DataFrame, pd.DataFrame, list[str]],
) -> None:
    reference, _, features = frames
    for row in feature_drift(reference, reference, features):
        assert row["psi"] == 0 and row["statistic"] == 0
        assert row["p_value"] == pytest.approx(1.0)
        assert row["drifted"] is False


def test_feature_drift_uses_only_the_listed_features(
    frames: tuple[pd.DataFrame, pd.DataFrame, list[str]],
) -> None:
    reference, new, _ = frames
    rows = feature_drift(reference, new, ["x2", "x0"])
    assert [(row["feature"], row["drifted"]) for row in rows] == [("x2", True), ("x0", False)]


@pytest.mark.parametrize(("shift", "drifted"), [(0.0, False), (0.3, False), (0.7, True)])
def test_drifted_means_psi_above_the_warning_level(shift: float, drifted: bool) -> None:
    # A shift of 0.3 std is "moderate" (PSI ~0.08): reported, but not flagged.
    reference = pd.DataFrame({"a": _normal(0, seed=1)})
    new = pd.DataFrame({"a": _normal(shift, seed=2)})
    (row,) = feature_drift(reference, new, ["a"])
    assert row["drifted"] is drifted
    assert (row["psi"] > 0.05) is (shift > 0)


def _counts(*counts: int) -> np.ndarray:
    return np.repeat(np.arange(len(counts), dtype=float), counts)


@pytest.mark.parametrize(
    ("reference", "new"),
    [
        (_counts(950, 50), _counts(500, 500)),  # a rare flag becomes common
        (_counts(500, 250, 250), _counts(500, 500, 0)),  # the top category disappears
    ],
    ids=["binary-5%-to-50%", "ternary-top-gone"],
)
def test_psi_sees_drift_in_low_cardinality_features(reference: np.ndarray, new: np.ndarray) -> None:
    assert psi(reference, new) > PSI_WARN


def _islands(*counts: int, missing: int = 0) -> pd.DataFrame:
    names = np.repeat(["Biscoe", "Dream", "Torgersen", "Atlantis"][: len(counts)], counts)
    return pd.DataFrame({"island": [*names, *([None] * missing)], "mass": 1.0})


def test_categorical_drift_sees_shares_new_categories_and_gaps() -> None:
    reference = _islands(500, 300, 200)
    (same,) = feature_drift(reference, _islands(50, 30, 20), ["island"], ["island"])
    assert same["kind"] == "categorical" and same["test"] == "chi2"
    assert same["psi"] < 1e-9 and same["p_value"] > 0.99 and not same["drifted"]
    (moved,) = feature_drift(
        reference, _islands(10, 30, 20, 40, missing=20), ["island"], ["island"]
    )
    assert moved["drifted"] and moved["psi"] > PSI_WARN and moved["p_value"] < 1e-6
    assert moved["new_categories"] == ["<missing>", "Atlantis"]
    assert moved["missing_reference"] == 0 and moved["missing_new"] == pytest.approx(
        20 / 120, abs=1e-6
    )


def test_numeric_drift_counts_the_missing_share_and_ignores_gaps_in_the_test() -> None:
    reference = pd.DataFrame({"a": _normal(0, seed=1)})
    new = pd.DataFrame({"a": _normal(0, seed=2)})
    new.loc[: N // 4, "a"] = np.nan
    (row,) = feature_drift(reference, new, ["a"])
    assert row["psi"] < 0.05  # the values that are there did not move
    assert row["missing_new"] == pytest.approx(0.25, abs=0.01)
    assert row["drifted"]  # but a quarter of them went missing


def test_label_shift_flags_a_batch_of_one_class() -> None:
    reference = np.array([0, 1] * 50)
    new = np.array([0, 0, 0, 1, 0, 1])
    batch = np.array(["b1.csv"] * 3 + ["b2.csv"] * 3)
    shift = label_shift(reference, new, batch, ("no", "yes"))
    assert shift["reference_positive_rate"] == 0.5
    assert shift["new_positive_rate"] == pytest.approx(2 / 6, abs=1e-6)
    assert [(b["batch"], b["one_class"]) for b in shift["batches"]] == [
        ("b1.csv", "no"),
        ("b2.csv", None),
    ]
