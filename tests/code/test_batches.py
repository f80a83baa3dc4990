"""New synthetic batches: numbered, seeded, optionally drifted, and clean for the data checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from epochline.core.errors import UserError
from epochline.core.params import DataParams
from epochline.data.batches import next_batch_number, write_batch
from epochline.data.schema import LabelCoder, conform, infer
from epochline.data.sources import feature_names, make_synthetic

INCOMING = "data/incoming"
PARAMS = DataParams(incoming_dir=INCOMING)


def _fresh(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(root)
    return root / INCOMING


def _write(
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
    rows: int = 200,
    drift: float = 0.0,
    seed: int | None = None,
) -> Path:
    _fresh(root, monkeypatch)
    return root / write_batch(PARAMS, rows, drift, seed)


def test_batches_are_numbered_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _fresh(tmp_path, monkeypatch)
    first = write_batch(PARAMS, 50, 0.0, None)
    second = write_batch(PARAMS, 50, 0.0, None)
    assert first == Path(INCOMING, "batch-0001.csv")
    assert second == Path(INCOMING, "batch-0002.csv")
    assert sorted(p.name for p in folder.iterdir()) == ["batch-0001.csv", "batch-0002.csv"]
    assert next_batch_number(folder) == 3


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        ([], 1),
        (["batch-0001.csv"], 2),
        (["batch-0002.csv", "batch-0009.parquet"], 10),
        (["batch-0003.csv", "user-upload.csv", "batch-x.csv"], 4),
        ([".batch-0005.csv", ".batch-0006.csv.abc.tmp", "batch-0007.txt", ".gitkeep"], 1),
    ],
)
def test_next_batch_number(tmp_path: Path, existing: list[str], expected: int) -> None:
    for name in existing:
        (tmp_path / name).write_text("x0,label\n1,0\n")
    assert next_batch_number(tmp_path) == expected


@pytest.mark.parametrize("seed", [None, 5])
def test_same_seed_and_number_gives_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int | None
) -> None:
    one = _write(tmp_path / "a", monkeypatch, seed=seed)
    two = _write(tmp_path / "b", monkeypatch, seed=seed)
    assert one.name == two.name == "batch-0001.csv"
    assert one.read_bytes() == two.read_bytes()


def test_successive_batches_hold_different_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _fresh(tmp_path, monkeypatch)
    write_batch(PARAMS, 200, 0.0, None)
    write_batch(PARAMS, 200, 0.0, None)
    first, second = (pd.read_csv(folder / f"batch-000{i}.csv") for i in (1, 2))
    assert not np.allclose(first.to_numpy(), second.to_numpy())
    # Nor is a batch a copy of the base synthetic table's first rows.
    base = make_synthetic(PARAMS.n_rows, PARAMS.n_features, PARAMS.seed, PARAMS.label_column)
    assert not np.allclose(first.to_numpy(), base.head(200).to_numpy())


@pytest.mark.parametrize("seed", [3, 4])
def test_another_seed_gives_other_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    plain = pd.read_csv(_write(tmp_path / "a", monkeypatch))
    seeded = pd.read_csv(_write(tmp_path / "b", monkeypatch, seed=seed))
    assert not np.allclose(plain.to_numpy(), seeded.to_numpy())


def test_columns_and_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    batch = pd.read_csv(_write(tmp_path, monkeypatch, rows=123))
    assert list(batch.columns) == list(make_synthetic(10, 10, 42).columns)
    assert list(batch.columns) == [*feature_names(10), "label"]
    assert len(batch) == 123


@pytest.mark.parametrize("drift", [2.0, -1.0])
def test_drift_shifts_every_feature_by_that_many_std_devs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, drift: float
) -> None:
    still = pd.read_csv(_write(tmp_path / "a", monkeypatch, rows=1000))
    moved = pd.read_csv(_write(tmp_path / "b", monkeypatch, rows=1000, drift=drift))
    features = feature_names(10)
    shift = (moved[features].mean() - still[features].mean()) / still[features].std()
    np.testing.assert_allclose(shift.to_numpy(), drift, atol=0.15 * abs(drift))
    # Covariate shift only: the labels are those of the undrifted batch.
    assert moved["label"].tolist() == still["label"].tolist()


def test_no_drift_keeps_the_feature_means(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _fresh(tmp_path, monkeypatch)
    features = feature_names(10)
    first = pd.read_csv(write_batch(PARAMS, 1000, 0.0, None))[features]
    second = pd.read_csv(write_batch(PARAMS, 1000, 0.0, None))[features]
    assert (folder / "batch-0002.csv").exists()
    shift = (second.mean() - first.mean()) / first.std()
    assert shift.abs().max() < 0.2  # two draws of one distribution: ~0.045 std error


@pytest.mark.parametrize("seed", [None, 1, 2, 3])
def test_both_classes_present(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int | None
) -> None:
    batch = pd.read_csv(_write(tmp_path, monkeypatch, seed=seed))
    assert sorted(batch["label"].unique().tolist()) == [0, 1]


@pytest.mark.parametrize("source", ["data/raw.csv", "data/raw"])
def test_non_synthetic_source_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    folder = _fresh(tmp_path, monkeypatch)
    params = DataParams(source=source, incoming_dir=INCOMING)
    with pytest.raises(UserError) as caught:
        write_batch(params, 100, 0.0, None)
    message = str(caught.value)
    assert "\n" not in message
    assert "data.source" in message and source in message and INCOMING in message
    assert not folder.exists()  # refused before touching anything


def test_no_hidden_temp_files_are_left(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _fresh(tmp_path, monkeypatch)
    for drift in (0.0, 1.0, 2.0):
        write_batch(PARAMS, 50, drift, None)
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["batch-0001.csv", "batch-0002.csv", "batch-0003.csv"]


@pytest.mark.parametrize("drift", [0.0, 2.0])
def test_batch_passes_the_data_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, drift: float
) -> None:
    path = _write(tmp_path, monkeypatch, drift=drift)
    raw = pd.read_csv(path)
    schema = infer(raw, str(path), PARAMS)
    checked = conform(raw, str(path), schema, LabelCoder("label", 1))
    assert len(checked) == len(raw) == 200
    assert checked["label"].dtype == "int64"
    assert all(checked[name].dtype == "float64" for name in feature_names(10))


def test_batch_follows_the_configured_shape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fresh(tmp_path, monkeypatch)
    params = DataParams(incoming_dir="new", n_features=3, label_column="y", seed=7)
    batch = pd.read_csv(write_batch(params, 40, 0.0, None))
    assert list(batch.columns) == ["x0", "x1", "x2", "y"]
    assert (tmp_path / "new" / "batch-0001.csv").exists()
