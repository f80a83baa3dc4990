"""Min-max scaling is fitted on training rows only, the way the normalize stage does it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from epochline.data import feature_names, make_synthetic
from epochline.params import SplitParams
from epochline.scaling import MinMaxScaler
from epochline.splitting import TEST, TRAIN, assign, key_columns

SPLIT = SplitParams()
FEATURES = feature_names(6)


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return make_synthetic(2_000, len(FEATURES), seed=11)


def _fit_like_normalize(raw: pd.DataFrame) -> tuple[MinMaxScaler, np.ndarray]:
    """The normalize stage's code path: assign by the raw row, fit on TRAIN rows only."""
    part = assign(raw, key_columns(list(raw.columns), None), SPLIT)
    return MinMaxScaler.fit(raw[part == TRAIN], FEATURES), part


def _extreme_test_row(raw: pd.DataFrame, magnitude: float) -> pd.DataFrame:
    """A row far outside the training range whose content makes it land in test."""
    for k in range(1, 1_000):
        row = pd.DataFrame([[magnitude * k] * len(FEATURES) + [1]], columns=raw.columns)
        row = row.astype(raw.dtypes.to_dict())
        if assign(row, list(row.columns), SPLIT)[0] == TEST:
            return row
    raise AssertionError("no candidate row hashed into test")


@pytest.mark.parametrize("magnitude", [1e6, -1e6])
def test_extreme_test_rows_do_not_change_the_scaler(raw: pd.DataFrame, magnitude: float) -> None:
    scaler, _ = _fit_like_normalize(raw)
    extreme = _extreme_test_row(raw, magnitude)
    grown = pd.concat([raw, extreme], ignore_index=True)

    refitted, part = _fit_like_normalize(grown)

    assert part[-1] == TEST
    assert refitted == scaler
    # The check has teeth: the same row, were it fitted on, would move every bound.
    everything = MinMaxScaler.fit(grown, FEATURES)
    moved = everything.maximum if magnitude > 0 else everything.minimum
    kept = scaler.maximum if magnitude > 0 else scaler.minimum
    assert all(m != k for m, k in zip(moved, kept, strict=True))


def test_extreme_test_row_is_scaled_outside_unit_interval(raw: pd.DataFrame) -> None:
    scaler, _ = _fit_like_normalize(raw)
    extreme = _extreme_test_row(raw, 1e6)
    scaled = scaler.transform(extreme)[FEATURES].to_numpy()
    assert (scaled > 1.0).all()


def test_scaler_bounds_are_the_train_rows_bounds(raw: pd.DataFrame) -> None:
    scaler, part = _fit_like_normalize(raw)
    train = raw[part == TRAIN]
    assert scaler.columns == tuple(FEATURES)
    np.testing.assert_array_equal(scaler.minimum, train[FEATURES].min().to_numpy())
    np.testing.assert_array_equal(scaler.maximum, train[FEATURES].max().to_numpy())


def test_transform_maps_train_rows_onto_unit_interval(raw: pd.DataFrame) -> None:
    scaler, part = _fit_like_normalize(raw)
    scaled = scaler.transform(raw[part == TRAIN])[FEATURES]
    assert scaled.notna().all().all()
    assert (scaled.min() == 0.0).all()
    assert (scaled.max() == 1.0).all()


def test_transform_leaves_label_and_input_untouched(raw: pd.DataFrame) -> None:
    before = raw.copy()
    scaler, _ = _fit_like_normalize(raw)
    scaled = scaler.transform(raw)
    pd.testing.assert_frame_equal(raw, before)
    pd.testing.assert_series_equal(scaled["label"], raw["label"])
    assert list(scaled.columns) == list(raw.columns)
    assert (scaled[FEATURES].dtypes == np.float64).all()


@pytest.mark.parametrize("value", [0.0, 3.5, -2e9])
def test_constant_column_maps_to_zero_without_nan(value: float) -> None:
    df = pd.DataFrame({"c": [value] * 5, "v": [1.0, 2.0, 3.0, 4.0, 5.0]})
    scaler = MinMaxScaler.fit(df, ["c", "v"])
    out = scaler.transform(df)
    np.testing.assert_array_equal(out["c"].to_numpy(), np.zeros(5))
    np.testing.assert_allclose(out["v"].to_numpy(), [0.0, 0.25, 0.5, 0.75, 1.0])
    assert not out.isna().any().any()


def test_constant_column_keeps_offsets_for_new_values() -> None:
    scaler = MinMaxScaler.fit(pd.DataFrame({"c": [2.0, 2.0]}), ["c"])
    out = scaler.transform(pd.DataFrame({"c": [2.0, 5.0]}))
    np.testing.assert_array_equal(out["c"].to_numpy(), [0.0, 3.0])


def test_dict_roundtrip_through_json_is_exact(raw: pd.DataFrame) -> None:
    scaler, _ = _fit_like_normalize(raw)
    data = scaler.to_dict()
    assert set(data) == {"columns", "min", "max"}
    restored = MinMaxScaler.from_dict(json.loads(json.dumps(data)))
    assert restored == scaler
    pd.testing.assert_frame_equal(restored.transform(raw), scaler.transform(raw))


def test_fit_uses_only_the_named_columns() -> None:
    df = pd.DataFrame({"a": [0.0, 10.0], "b": [5.0, 7.0], "label": [0, 1]})
    scaler = MinMaxScaler.fit(df, ["b"])
    assert scaler.columns == ("b",)
    out = scaler.transform(df)
    np.testing.assert_array_equal(out["a"].to_numpy(), df["a"].to_numpy())
    np.testing.assert_array_equal(out["b"].to_numpy(), [0.0, 1.0])
