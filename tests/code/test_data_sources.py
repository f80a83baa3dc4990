"""Where the raw table comes from, and the one-line errors for every bad file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from epochline.core.errors import UserError
from epochline.core.params import DataParams
from epochline.data.sources import feature_names, load_raw, make_synthetic, table_files

FEATURES = feature_names(3)


def _base(n_rows: int = 60, seed: int = 1) -> pd.DataFrame:
    return make_synthetic(n_rows, len(FEATURES), seed)


def _params(source: str, **overrides: Any) -> DataParams:
    return DataParams(source=source, incoming_dir="data/incoming", **overrides)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repo-like folder as cwd: DataParams holds relative paths, as in params.yaml."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "external").mkdir(parents=True)
    (tmp_path / "data" / "incoming").mkdir()
    (tmp_path / "data" / "incoming" / ".gitkeep").touch()
    return tmp_path


def _load_error(params: DataParams) -> str:
    with pytest.raises(UserError) as caught:
        load_raw(params)
    message = str(caught.value)
    assert "\n" not in message, f"message spans lines: {message!r}"
    return message


# --- the synthetic default -------------------------------------------------------------


def test_synthetic_default_shape_and_columns() -> None:
    p = DataParams()
    df = make_synthetic(p.n_rows, p.n_features, p.seed)
    assert df.shape == (1000, 11)
    assert list(df.columns) == [*feature_names(10), "label"]
    assert (df[feature_names(10)].dtypes == np.float64).all()
    assert df["label"].dtype == np.int64


def test_synthetic_has_both_classes_roughly_balanced() -> None:
    df = make_synthetic(1000, 10, 42)
    assert set(df["label"].unique()) == {0, 1}
    # The label thresholds a noisy logit at its median.
    assert 0.4 < df["label"].mean() < 0.6


@pytest.mark.parametrize("seed", [0, 42, 2024])
def test_synthetic_is_seeded(seed: int) -> None:
    pd.testing.assert_frame_equal(make_synthetic(300, 5, seed), make_synthetic(300, 5, seed))


def test_synthetic_differs_with_seed() -> None:
    a, b = make_synthetic(300, 5, 1), make_synthetic(300, 5, 2)
    assert not np.isclose(a[feature_names(5)].to_numpy(), b[feature_names(5)].to_numpy()).any()


def test_synthetic_features_are_raw_not_normalised() -> None:
    # normalize has real work to do only if the raw scales are far from [0, 1] and unequal.
    x = make_synthetic(1000, 10, 42)[feature_names(10)]
    assert (x.max() > 1.0).any()
    assert not ((x.min() >= 0.0) & (x.max() <= 1.0)).all()
    spans = x.max() - x.min()
    assert spans.max() / spans.min() > 10


def test_load_raw_synthetic_uses_the_params(workdir: Path) -> None:
    df = load_raw(DataParams(n_rows=120, n_features=4, seed=3, label_column="y"))
    pd.testing.assert_frame_equal(df, make_synthetic(120, 4, 3, label="y"))


# --- user files ------------------------------------------------------------------------


def _to_parquet(df: pd.DataFrame, path: Path) -> None:
    # Parquet columns have one type: a column holding a word is a string column there.
    wordy = [c for c in df.columns if df[c].map(lambda v: isinstance(v, str)).any()]
    df.astype(dict.fromkeys(wordy, str)).to_parquet(path, index=False)


Writer = Callable[[pd.DataFrame, Path], None]
WRITERS: dict[str, Writer] = {
    "csv": lambda df, path: df.to_csv(path, index=False),
    "parquet": _to_parquet,
}


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_single_file_source(workdir: Path, fmt: str) -> None:
    base = _base()
    WRITERS[fmt](base, Path(f"data/external/table.{fmt}"))
    df = load_raw(_params(f"data/external/table.{fmt}"))
    pd.testing.assert_frame_equal(df, base, check_exact=False, rtol=1e-15)
    assert (df[FEATURES].dtypes == np.float64).all()
    assert df["label"].dtype == np.int64


def test_integer_features_are_read_as_float(workdir: Path) -> None:
    base = _base()
    base["x0"] = np.arange(len(base))
    base.to_csv("data/external/ints.csv", index=False)
    df = load_raw(_params("data/external/ints.csv"))
    assert df["x0"].dtype == np.float64
    np.testing.assert_array_equal(df["x0"].to_numpy(), np.arange(len(base), dtype=float))


def test_folder_source_concatenates_files_in_name_order(workdir: Path) -> None:
    folder = Path("data/external/parts")
    folder.mkdir()
    parts = [_base(30, seed) for seed in (1, 2, 3)]
    # Written out of order, and mixed formats: the name decides the order, not the mtime.
    WRITERS["parquet"](parts[2], folder / "c.parquet")
    WRITERS["csv"](parts[0], folder / "a.csv")
    WRITERS["csv"](parts[1], folder / "b.csv")
    (folder / ".gitkeep").touch()
    (folder / "notes.txt").write_text("not a table")
    df = load_raw(_params(str(folder)))
    expected = pd.concat(parts, ignore_index=True)
    pd.testing.assert_frame_equal(df, expected, check_exact=False, rtol=1e-15)


def test_incoming_batches_are_appended_in_name_order(workdir: Path) -> None:
    base = _base(60, seed=1)
    base.to_csv("data/external/base.csv", index=False)
    batches = {name: _base(20, seed) for seed, name in enumerate(["b02", "b10", "b01"], start=5)}
    for name in ["b10", "b02", "b01"]:  # written in neither name nor content order
        batches[name].to_csv(f"data/incoming/{name}.csv", index=False)
    df = load_raw(_params("data/external/base.csv"))
    expected = pd.concat([base, batches["b01"], batches["b02"], batches["b10"]], ignore_index=True)
    pd.testing.assert_frame_equal(df, expected, check_exact=False, rtol=1e-15)


def test_incoming_batch_columns_are_reordered_to_the_base(workdir: Path) -> None:
    base = _base(60)
    batch = _base(20, seed=9)
    base.to_csv("data/external/base.csv", index=False)
    batch[["label", "x2", "x0", "x1"]].to_parquet("data/incoming/001.parquet", index=False)
    df = load_raw(_params("data/external/base.csv"))
    assert list(df.columns) == list(base.columns)
    pd.testing.assert_frame_equal(df.tail(20).reset_index(drop=True), batch, rtol=1e-15)


def test_incoming_batches_append_to_the_synthetic_table(workdir: Path) -> None:
    batch = make_synthetic(25, 10, seed=99)
    batch.to_csv("data/incoming/001.csv", index=False)
    df = load_raw(DataParams(incoming_dir="data/incoming"))
    assert len(df) == 1025
    pd.testing.assert_frame_equal(df.tail(25).reset_index(drop=True), batch, rtol=1e-15)


def test_hidden_files_in_incoming_are_ignored(workdir: Path) -> None:
    _base().to_csv("data/external/base.csv", index=False)
    Path("data/incoming/.partial.csv").write_text("garbage,\n\x00\x01")
    Path("data/incoming/.DS_Store.parquet").write_bytes(b"\x00")
    assert table_files(Path("data/incoming")) == []
    assert len(load_raw(_params("data/external/base.csv"))) == 60


def test_missing_incoming_folder_means_no_batches(workdir: Path) -> None:
    _base().to_csv("data/external/base.csv", index=False)
    df = load_raw(DataParams(source="data/external/base.csv", incoming_dir="nowhere"))
    assert len(df) == 60


def test_id_column_is_kept_and_not_a_feature(workdir: Path) -> None:
    base = _base().assign(id=[f"r{i}" for i in range(60)])
    base.to_csv("data/external/base.csv", index=False)
    df = load_raw(_params("data/external/base.csv", id_column="id"))
    assert list(df["id"]) == list(base["id"])
    assert (df[FEATURES].dtypes == np.float64).all()


# --- bad inputs: one line that names the file -------------------------------------------


def _with(column: str, row: int, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def edit(df: pd.DataFrame) -> pd.DataFrame:
        df = df.astype({column: object})
        df.loc[row, column] = value
        return df

    return edit


SOURCE_CASES: dict[str, tuple[Callable[[Path], None], list[str]]] = {
    "empty csv": (lambda p: p.write_bytes(b""), ["is empty"]),
    "header only": (lambda p: p.write_text("x0,x1,x2,label\n"), ["has no rows"]),
    "non numeric": (
        lambda p: _with("x1", 4, "abc")(_base()).to_csv(p, index=False),
        ["'x1'", "mixes numbers and text", "'abc' at row 5", "data.categorical"],
    ),
    "inf": (
        lambda p: _with("x2", 8, np.inf)(_base()).to_csv(p, index=False),
        ["'x2'", "inf", "row 9", "finite"],
    ),
    "minus inf": (
        lambda p: _with("x2", 0, -np.inf)(_base()).to_csv(p, index=False),
        ["'x2'", "-inf", "row 1"],
    ),
    "label 2": (
        lambda p: _with("label", 3, 2)(_base()).to_csv(p, index=False),
        ["label", "third value (2 at row 4)", "allowed: 1 (data.positive_class) and 0"],
    ),
    "label 0.5": (
        lambda p: _with("label", 3, 0.5)(_base()).to_csv(p, index=False),
        ["label", "third value (0.5 at row 4)"],
    ),
    "label missing": (
        lambda p: _with("label", 2, np.nan)(_base()).to_csv(p, index=False),
        ["label", "is missing", "row 3"],
    ),
    "no label column": (
        lambda p: _base().drop(columns="label").to_csv(p, index=False),
        ["no label column 'label'"],
    ),
    "single class": (
        lambda p: _base().assign(label=1).to_csv(p, index=False),
        ["only class 1", "both classes"],
    ),
    "too few rows": (
        lambda p: _base(20).to_csv(p, index=False),
        ["20 rows", "data.min_rows = 50"],
    ),
    "no features": (
        lambda p: _base()[["label"]].to_csv(p, index=False),
        ["no feature columns"],
    ),
}


@pytest.mark.parametrize("case", sorted(SOURCE_CASES))
def test_bad_source_file_names_the_file(workdir: Path, case: str) -> None:
    make, expected = SOURCE_CASES[case]
    path = Path("data/external/bad_input.csv")
    make(path)
    message = _load_error(_params(str(path)))
    assert str(path) in message
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"


def test_bad_label_value_is_shown_plainly(workdir: Path) -> None:
    path = Path("data/external/label.csv")
    _with("label", 3, 2)(_base()).to_csv(path, index=False)
    message = _load_error(_params(str(path)))
    assert "(2 at row 4)" in message and "np." not in message


@pytest.mark.parametrize("content", [b"", b"PAR1 not really parquet"])
def test_unreadable_parquet_names_the_file(workdir: Path, content: bytes) -> None:
    path = Path("data/external/broken.parquet")
    path.write_bytes(content)
    message = _load_error(_params(str(path)))
    assert str(path) in message
    assert "cannot be read as a table" in message


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("data/external/missing.csv", "not found"),
        ("data/external/missing.parquet", "not found"),
        ("data/external/table.xlsx", "not a .csv or .parquet file"),
        ("data/external", "holds no .csv or .parquet files"),
    ],
)
def test_bad_source_path_names_the_path(workdir: Path, source: str, expected: str) -> None:
    Path("data/external/table.xlsx").write_bytes(b"xlsx")
    message = _load_error(_params(source))
    assert message.startswith("data.source: ")
    assert source in message
    assert expected in message


BATCH_CASES: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], list[str]]] = {
    "missing column": (
        lambda df: df.drop(columns="x1"),
        ["column 'x1' of the base table is missing"],
    ),
    "extra column": (lambda df: df.assign(x9=1.0), ["column 'x9' is not in the base table"]),
    "renamed label": (lambda df: df.rename(columns={"label": "y"}), ["column 'y' is not in"]),
    "inf": (_with("x1", 1, np.inf), ["'x1'", "inf", "row 2"]),
    "non numeric": (_with("x2", 0, "abc"), ["'x2'", "numeric in the base table", "'abc'"]),
    "label 2": (_with("label", 5, 2), ["label", "row 6"]),
    "label 0.5": (_with("label", 5, 0.5), ["0.5", "row 6"]),
}


@pytest.mark.parametrize("case", sorted(BATCH_CASES))
@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_bad_incoming_batch_names_the_batch(workdir: Path, case: str, fmt: str) -> None:
    edit, expected = BATCH_CASES[case]
    _base().to_csv("data/external/base.csv", index=False)
    _base(20, seed=4).to_csv("data/incoming/001_good.csv", index=False)
    batch = Path(f"data/incoming/002_bad.{fmt}")
    WRITERS[fmt](edit(_base(20, seed=5)), batch)
    message = _load_error(_params("data/external/base.csv"))
    assert message.startswith(f"{batch}: ")
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"


def test_empty_incoming_batch_names_the_batch(workdir: Path) -> None:
    _base().to_csv("data/external/base.csv", index=False)
    Path("data/incoming/001.csv").write_bytes(b"")
    assert "data/incoming/001.csv: file is empty" in _load_error(_params("data/external/base.csv"))


def test_single_class_overall_is_caught_across_files(workdir: Path) -> None:
    # Each file alone is valid; only the assembled table lacks a class.
    base = _base()
    base.assign(label=0).to_csv("data/external/base.csv", index=False)
    _base(20, seed=2).assign(label=0).to_csv("data/incoming/001.csv", index=False)
    message = _load_error(_params("data/external/base.csv"))
    assert "data/external/base.csv" in message
    assert "data.positive_class 1 never occurs" in message


def test_min_rows_counts_the_incoming_batches(workdir: Path) -> None:
    _base(30).to_csv("data/external/base.csv", index=False)
    _base(30, seed=2).to_csv("data/incoming/001.csv", index=False)
    assert len(load_raw(_params("data/external/base.csv"))) == 60
    message = _load_error(_params("data/external/base.csv", min_rows=61))
    assert "60 rows, fewer than data.min_rows = 61" in message


def test_duplicate_id_across_files_is_rejected(workdir: Path) -> None:
    _base().assign(id=range(60)).to_csv("data/external/base.csv", index=False)
    _base(5, seed=3).assign(id=[100, 101, 7, 102, 103]).to_csv("data/incoming/001.csv", index=False)
    message = _load_error(_params("data/external/base.csv", id_column="id"))
    assert message.startswith("data/incoming/001.csv: ")
    assert "'7'" in message and "already in data/external/base.csv" in message


def test_duplicate_id_between_source_files_names_the_source(workdir: Path) -> None:
    folder = Path("data/external/parts")
    folder.mkdir()
    _base(30).assign(id=range(30)).to_csv(folder / "a.csv", index=False)
    _base(30, seed=2).assign(id=range(29, 59)).to_csv(folder / "b.csv", index=False)
    message = _load_error(_params(str(folder), id_column="id"))
    assert message.startswith(f"{folder}")


def test_synthetic_with_id_column_is_a_user_error(workdir: Path) -> None:
    message = _load_error(DataParams(id_column="id"))
    assert "data.id_column" in message


def test_ids_compare_as_text_across_files_of_other_id_types(workdir: Path) -> None:
    _base().assign(id=range(60)).to_csv("data/external/base.csv", index=False)
    _base(5, seed=3).assign(id=[f"n{i}" for i in range(5)]).to_csv(
        "data/incoming/001.csv", index=False
    )
    table = load_raw(_params("data/external/base.csv", id_column="id"))
    assert table["id"].map(type).eq(str).all()
    assert table["id"].iloc[[0, -1]].tolist() == ["0", "n4"]


@pytest.mark.parametrize(
    ("base_low", "batch_values", "named", "expected"),
    [
        # Both placeholders in the batch, appended to the synthetic table.
        (None, {2: 1e308, 5: -1e308}, "data/incoming/batch-0001.csv", "1e+308 at row 3"),
        # The base holds one end, the batch the outermost value: the batch is named.
        (-1e308, {4: 1.5e308}, "data/incoming/batch-0001.csv", "1.5e+308 at row 5"),
        # The base holds the outermost value: the base is named, not the batch.
        (-1.5e308, {4: 1e308}, "synthetic", "-1.5e+308 at row 2"),
    ],
)
def test_a_range_overflowing_float64_names_the_file_and_row_holding_the_value(
    workdir: Path,
    base_low: float | None,
    batch_values: dict[int, float],
    named: str,
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if base_low is not None:

        def base_with_low(*args: Any, **kwargs: Any) -> pd.DataFrame:
            return _with("x1", 1, base_low)(make_synthetic(*args, **kwargs)).astype({"x1": float})

        monkeypatch.setattr("epochline.data.sources.make_synthetic", base_with_low)
    batch = _base(20, seed=5).astype({"x1": float})
    for row, value in batch_values.items():
        batch.loc[row, "x1"] = value
    batch.to_csv("data/incoming/batch-0001.csv", index=False)
    message = _load_error(DataParams(n_features=3))
    assert message.startswith(f"{named}: column 'x1' spans "), message
    assert expected in message and "overflows float64" in message


def _with_columns(df: pd.DataFrame, names: list[str], path: Path) -> None:
    """Write `df` with these column names, repeats included (pandas would refuse them)."""
    if path.suffix == ".csv":
        df.set_axis(names, axis=1).to_csv(path, index=False)
    else:
        arrays = [pa.array(df[c].to_numpy()) for c in df.columns]
        pq.write_table(pa.table(arrays, names=names), path)


@pytest.mark.parametrize("fmt", sorted(WRITERS))
@pytest.mark.parametrize("file", ["base", "batch"])
def test_a_column_name_given_twice_is_refused_naming_file_and_column(
    workdir: Path, fmt: str, file: str
) -> None:
    twice = ["x0", "x1", "x1", "label"]  # pandas would read the second as 'x1.1'
    base, batch = Path(f"data/external/base.{fmt}"), Path(f"data/incoming/001.{fmt}")
    WRITERS[fmt](_base(), base)
    WRITERS[fmt](_base(20, seed=4), batch)
    bad = base if file == "base" else batch
    _with_columns(_base() if file == "base" else _base(20, seed=4), twice, bad)
    message = _load_error(_params(str(base)))
    assert message == (
        f"{bad}: column 'x1' appears twice (columns 2 and 3); allowed: one column per name: "
        "rename or drop one of them"
    )
