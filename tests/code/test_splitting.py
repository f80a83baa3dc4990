"""The split is a pure function of each row's key and the seed: stable, seeded, proportional."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from epochline.core import paths
from epochline.core.params import SplitParams, load_params
from epochline.data.sources import make_synthetic
from epochline.data.splitting import TEST, TRAIN, VAL, assign, key_columns, uniform_keys
from epochline.stages import split

from .conftest import write_params

N = 10_000
PARAMS = SplitParams(test_size=0.2, val_size=0.1, seed=42)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return make_synthetic(N, 5, seed=7)


def _keys(df: pd.DataFrame) -> list[str]:
    return key_columns(list(df.columns), None)


def _tolerance(p: float, n: int) -> float:
    # Five binomial standard deviations: a fair hash misses this once in ~3.5 million draws,
    # while a bias of a few points (say val taken from the whole table) is caught.
    return 5 * math.sqrt(p * (1 - p) / n)


def test_assign_is_deterministic(table: pd.DataFrame) -> None:
    first = assign(table, _keys(table), PARAMS)
    again = assign(table.copy(), _keys(table), SplitParams(**PARAMS.model_dump()))
    np.testing.assert_array_equal(first, again)


def test_assign_returns_only_the_three_parts(table: pd.DataFrame) -> None:
    parts = assign(table, _keys(table), PARAMS)
    assert len(parts) == len(table)
    assert set(parts) == {TRAIN, VAL, TEST}


def test_uniform_keys_lie_in_unit_interval(table: pd.DataFrame) -> None:
    u = uniform_keys(table, _keys(table), PARAMS.seed)
    assert u.dtype == np.float64
    assert u.min() >= 0.0
    assert u.max() < 1.0


@pytest.mark.parametrize("n_new", [1, 37, 5_000])
def test_appending_rows_never_moves_existing_rows(table: pd.DataFrame, n_new: int) -> None:
    new_rows = make_synthetic(n_new, 5, seed=8)
    before = assign(table, _keys(table), PARAMS)
    grown = pd.concat([table, new_rows], ignore_index=True)
    after = assign(grown, _keys(grown), PARAMS)
    np.testing.assert_array_equal(after[: len(table)], before)


@pytest.mark.parametrize(
    ("test_size", "val_size"), [(0.2, 0.1), (0.3, 0.25), (0.05, 0.5), (0.5, 0.05)]
)
def test_proportions_follow_test_and_val_size(
    table: pd.DataFrame, test_size: float, val_size: float
) -> None:
    params = SplitParams(test_size=test_size, val_size=val_size, seed=3)
    parts = assign(table, _keys(table), params)
    # val is a val_size share of the rows left after test, not of the whole table.
    expected = {
        TEST: test_size,
        VAL: (1 - test_size) * val_size,
        TRAIN: (1 - test_size) * (1 - val_size),
    }
    for part, p in expected.items():
        share = float(np.mean(parts == part))
        assert abs(share - p) < _tolerance(p, N), f"{part}: {share:.4f} vs {p:.4f}"


@pytest.mark.parametrize("other_seed", [0, 43, 12345])
def test_a_different_seed_changes_the_assignment(table: pd.DataFrame, other_seed: int) -> None:
    base = assign(table, _keys(table), PARAMS)
    other = assign(table, _keys(table), SplitParams(test_size=0.2, val_size=0.1, seed=other_seed))
    # Two independent draws agree with probability 0.2² + 0.08² + 0.72² ≈ 0.56.
    agreement = float(np.mean(base == other))
    assert abs(agreement - 0.5648) < 0.05


def test_each_class_gets_about_test_size_held_out(table: pd.DataFrame) -> None:
    parts = assign(table, _keys(table), PARAMS)
    for cls in (0, 1):
        rows = (table["label"] == cls).to_numpy()
        share = float(np.mean(parts[rows] == TEST))
        tol = _tolerance(PARAMS.test_size, int(rows.sum()))
        assert abs(share - PARAMS.test_size) < tol, f"class {cls}: {share:.4f}"


def test_row_order_does_not_matter(table: pd.DataFrame) -> None:
    order = np.random.default_rng(0).permutation(len(table))
    shuffled = table.iloc[order].reset_index(drop=True)
    np.testing.assert_array_equal(
        assign(shuffled, _keys(shuffled), PARAMS), assign(table, _keys(table), PARAMS)[order]
    )


def test_index_labels_do_not_matter(table: pd.DataFrame) -> None:
    relabelled = table.set_axis(np.arange(len(table)) * 7 + 1000)
    np.testing.assert_array_equal(
        assign(relabelled, _keys(table), PARAMS), assign(table, _keys(table), PARAMS)
    )


def test_identical_rows_land_in_the_same_part(table: pd.DataFrame) -> None:
    # Duplicates split across train and test would leak test rows into training.
    doubled = pd.concat([table, table], ignore_index=True)
    parts = assign(doubled, _keys(doubled), PARAMS)
    np.testing.assert_array_equal(parts[: len(table)], parts[len(table) :])


@pytest.fixture(scope="module")
def with_ids(table: pd.DataFrame) -> pd.DataFrame:
    return table.assign(id=[f"user-{i}" for i in range(len(table))])


def test_key_columns_is_the_id_when_configured() -> None:
    assert key_columns(["x0", "x1", "label", "id"], "id") == ["id"]
    assert key_columns(["x0", "x1", "label"], None) == ["x0", "x1", "label"]


def test_same_id_same_part_when_features_change(with_ids: pd.DataFrame) -> None:
    keys = key_columns(list(with_ids.columns), "id")
    before = assign(with_ids, keys, PARAMS)
    edited = with_ids.copy()
    edited[["x0", "x1", "label"]] = make_synthetic(len(edited), 5, seed=99)[["x0", "x1", "label"]]
    np.testing.assert_array_equal(assign(edited, keys, PARAMS), before)


def test_content_key_moves_rows_when_features_change(table: pd.DataFrame) -> None:
    # The counterpart of the id test: without an id, an edited row is a new row.
    edited = table.assign(x0=table["x0"] + 1.0)
    agreement = float(
        np.mean(assign(edited, _keys(edited), PARAMS) == assign(table, _keys(table), PARAMS))
    )
    assert agreement < 0.7


def test_id_keyed_split_is_stable_under_appends_and_shuffles(with_ids: pd.DataFrame) -> None:
    keys = ["id"]
    before = pd.Series(assign(with_ids, keys, PARAMS), index=with_ids["id"])
    extra = make_synthetic(500, 5, seed=5).assign(id=[f"new-{i}" for i in range(500)])
    grown = pd.concat([extra, with_ids], ignore_index=True).sample(frac=1.0, random_state=1)
    after = pd.Series(assign(grown, keys, PARAMS), index=grown["id"].to_numpy())
    pd.testing.assert_series_equal(after.loc[before.index], before, check_names=False)


def _own_raw(n: int) -> pd.DataFrame:
    """Raw rows as load writes a user's table: text with gaps, numbers with gaps, an id."""
    rng = np.random.default_rng(3)
    raw = pd.DataFrame({
        "id": pd.Series([f"r{i}" for i in range(n)], dtype="str"),
        "island": pd.Series(rng.choice(["Biscoe", "Dream", "Torgersen"], n), dtype="str"),
        "mass": rng.normal(4000, 500, n),
        "label": (rng.random(n) > 0.5).astype(np.int64),
    })  # fmt: skip
    raw.loc[3, "mass"] = np.nan
    raw.loc[5, "island"] = None
    return raw


@pytest.mark.parametrize("id_column", [None, "id"])
def test_split_stage_by_row_groups_is_the_split_of_the_whole_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, id_column: str | None
) -> None:
    # The stage reads its inputs a row group at a time; row groups of other sizes in the
    # two inputs must still give each row the part its whole-table assignment gives it.
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path, {"data": {"id_column": id_column}})
    raw = _own_raw(1000)
    normalized = pd.DataFrame({"mass": np.linspace(0, 1, len(raw), dtype=np.float32),
                               "label": raw["label"]})  # fmt: skip
    paths.SPLIT_DIR.mkdir(parents=True)
    pq.write_table(pa.Table.from_pandas(raw, preserve_index=False), paths.RAW, row_group_size=64)
    pq.write_table(
        pa.Table.from_pandas(normalized, preserve_index=False), paths.NORMALIZED, row_group_size=100
    )
    split.main()
    part = assign(raw, key_columns(list(raw.columns), id_column), load_params().split)
    for name, path, source in ((TRAIN, paths.TRAIN, normalized), (VAL, paths.VAL, normalized),
                               (TEST, paths.TEST, raw)):  # fmt: skip
        expected = source[part == name].reset_index(drop=True)
        pd.testing.assert_frame_equal(pd.read_parquet(path), expected, check_exact=True)
