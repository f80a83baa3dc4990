"""Schema, ranges and leakage checks on what load, normalize and split write."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from epochline.core import paths
from epochline.data.sources import feature_names
from epochline.data.splitting import TEST, TRAIN, VAL, assign, key_columns

from .conftest import PipelineRun


def _features(run: PipelineRun, df: pd.DataFrame) -> list[str]:
    data = run.params.data
    return [c for c in df.columns if c not in (data.label_column, data.id_column)]


def _rows(df: pd.DataFrame) -> set[tuple[object, ...]]:
    return set(df.itertuples(index=False, name=None))


@pytest.fixture(scope="module")
def raw(pipeline: PipelineRun) -> pd.DataFrame:
    return pipeline.read(paths.RAW)


@pytest.fixture(scope="module")
def parts(pipeline: PipelineRun) -> dict[str, pd.DataFrame]:
    return {
        TRAIN: pipeline.read(paths.TRAIN),
        VAL: pipeline.read(paths.VAL),
        TEST: pipeline.read(paths.TEST),
    }


@pytest.fixture(scope="module")
def scaler(pipeline: PipelineRun) -> dict[str, list]:
    return json.loads((pipeline.root / paths.PREPROCESSOR).read_text())


def test_every_output_is_written(pipeline: PipelineRun) -> None:
    for path in (
        paths.RAW,
        paths.NORMALIZED,
        paths.PREPROCESSOR,
        paths.TRAIN,
        paths.VAL,
        paths.TEST,
    ):
        assert (pipeline.root / path).stat().st_size > 0, path
    assert list(pipeline.root.rglob(".*.tmp")) == []


def test_raw_schema(pipeline: PipelineRun, raw: pd.DataFrame) -> None:
    data = pipeline.params.data
    label = data.label_column
    if data.source == "synthetic":
        assert list(raw.columns) == [*feature_names(data.n_features), label]
        assert len(raw) == data.n_rows
    assert len(raw) >= data.min_rows
    features = _features(pipeline, raw)
    assert (raw[features].dtypes == np.float64).all()
    assert raw[label].dtype == np.int64
    assert not raw.isna().any().any()
    assert np.isfinite(raw[features].to_numpy()).all()
    assert set(raw[label].unique()) == {0, 1}


def test_normalized_has_raw_shape_and_labels(raw: pd.DataFrame, pipeline: PipelineRun) -> None:
    normalized = pipeline.read(paths.NORMALIZED)
    assert list(normalized.columns) == list(raw.columns)
    assert len(normalized) == len(raw)
    label = pipeline.params.data.label_column
    pd.testing.assert_series_equal(normalized[label], raw[label])


def test_inputs_are_the_float32_the_network_takes(
    pipeline: PipelineRun, raw: pd.DataFrame, parts: dict[str, pd.DataFrame]
) -> None:
    normalized = pipeline.read(paths.NORMALIZED)
    features, label = _features(pipeline, raw), pipeline.params.data.label_column
    for df in (normalized, parts[TRAIN], parts[VAL]):
        assert (df[features].dtypes == np.float32).all()
        assert df[label].dtype == raw[label].dtype


def test_train_features_are_standardised(
    pipeline: PipelineRun, parts: dict[str, pd.DataFrame]
) -> None:
    train = parts[TRAIN][_features(pipeline, parts[TRAIN])].astype(np.float64)
    assert not train.isna().any().any()
    # Fitted on these rows exactly: every feature has mean 0 and standard deviation 1
    # (to float32's precision, the type they are stored in).
    np.testing.assert_allclose(train.mean(), 0.0, atol=1e-6)
    np.testing.assert_allclose(train.std(ddof=0), 1.0, rtol=1e-6)


def _standardised(rows: pd.DataFrame, features: list[str], scaler: dict[str, list]) -> np.ndarray:
    std = np.array(scaler["std"])
    return (rows[features].to_numpy() - scaler["mean"]) / np.where(std > 0, std, 1.0)


def test_only_train_rows_were_fitted_on(
    pipeline: PipelineRun, parts: dict[str, pd.DataFrame], scaler: dict[str, list]
) -> None:
    test = parts[TEST]
    scaled = _standardised(test, _features(pipeline, test), scaler)
    # 200 held-out rows scaled by the training rows' mean: proof they were not fitted on.
    assert np.abs(scaled.mean(axis=0)).max() > 0.01


def test_parts_are_disjoint_and_cover_every_row(
    pipeline: PipelineRun, raw: pd.DataFrame, parts: dict[str, pd.DataFrame]
) -> None:
    normalized = pipeline.read(paths.NORMALIZED)
    assert sum(len(df) for df in parts.values()) == len(raw)
    # Compare in one space: test rows are raw, so scale them as normalize did.
    features = _features(pipeline, raw)
    scaler = json.loads((pipeline.root / paths.PREPROCESSOR).read_text())
    test_scaled = parts[TEST].copy()
    scaled = _standardised(parts[TEST], features, scaler)
    # Normalised inputs are stored as float32, the type the network takes them in.
    test_scaled[features] = scaled.astype(normalized[features].dtypes.iloc[0])
    train, val, test = _rows(parts[TRAIN]), _rows(parts[VAL]), _rows(test_scaled)
    assert not train & test, "test rows found in train"
    assert not val & test, "test rows found in val"
    assert not train & val, "val rows found in train"
    assert train | val | test == _rows(normalized)


def test_part_sizes_follow_the_split_params(
    pipeline: PipelineRun, raw: pd.DataFrame, parts: dict[str, pd.DataFrame]
) -> None:
    split = pipeline.params.split
    n = len(raw)
    shares = {
        TEST: split.test_size,
        VAL: (1 - split.test_size) * split.val_size,
        TRAIN: (1 - split.test_size) * (1 - split.val_size),
    }
    for name, p in shares.items():
        # Four binomial standard deviations; for 1000 rows at 0.2/0.1: 200±51, 80±34, 720±57.
        tolerance = 4 * math.sqrt(n * p * (1 - p))
        assert abs(len(parts[name]) - n * p) <= tolerance, f"{name}: {len(parts[name])} rows"


def test_every_part_has_both_classes(pipeline: PipelineRun, parts: dict[str, pd.DataFrame]) -> None:
    label = pipeline.params.data.label_column
    for name, df in parts.items():
        assert set(df[label].unique()) == {0, 1}, name


def test_scaler_is_the_train_rows_mean_and_standard_deviation(
    pipeline: PipelineRun, raw: pd.DataFrame, scaler: dict[str, list]
) -> None:
    features = _features(pipeline, raw)
    keys = key_columns(list(raw.columns), pipeline.params.data.id_column)
    train_raw = raw[assign(raw, keys, pipeline.params.split) == TRAIN]
    assert scaler["columns"] == features
    np.testing.assert_allclose(scaler["mean"], train_raw[features].mean(), rtol=1e-12)
    np.testing.assert_allclose(scaler["std"], train_raw[features].std(ddof=0), rtol=1e-12)
    # Not the whole table's.
    assert not np.allclose(scaler["mean"], raw[features].mean(), rtol=1e-6)


def test_test_split_holds_raw_rows(
    pipeline: PipelineRun, raw: pd.DataFrame, parts: dict[str, pd.DataFrame]
) -> None:
    keys = key_columns(list(raw.columns), pipeline.params.data.id_column)
    expected = raw[assign(raw, keys, pipeline.params.split) == TEST].reset_index(drop=True)
    pd.testing.assert_frame_equal(parts[TEST], expected, check_exact=True)
    assert _rows(parts[TEST]) <= _rows(raw)


def test_train_and_val_hold_normalized_rows(
    pipeline: PipelineRun, raw: pd.DataFrame, parts: dict[str, pd.DataFrame]
) -> None:
    normalized = pipeline.read(paths.NORMALIZED)
    keys = key_columns(list(raw.columns), pipeline.params.data.id_column)
    part = assign(raw, keys, pipeline.params.split)
    for name in (TRAIN, VAL):
        expected = normalized[part == name].reset_index(drop=True)
        pd.testing.assert_frame_equal(parts[name], expected, check_exact=True)
