"""Floors of the data stages: pyarrow reads and writes, numpy for the arithmetic.

`python -m bench.floors.data load|normalize|split|check`, in the project directory after
the real stages ran: normalize and split read the stage's own inputs (data/), every floor
writes under floor/, and `check` compares what the floors wrote with what the stages wrote.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from epochline.core.params import Params, load_params
from epochline.data.sources import make_synthetic
from epochline.data.splitting import TEST, TRAIN, VAL, assign, key_columns

OUT = Path("floor")
SPLIT_FILES = {TRAIN: "train.parquet", VAL: "val.parquet", TEST: "test.parquet"}


def load(params: Params, report: Path | None) -> None:
    d = params.data
    df = make_synthetic(d.n_rows, d.n_features, d.seed, d.label_column)
    if not np.isfinite(df.drop(columns=d.label_column).to_numpy()).all():
        raise ValueError("synthetic features must be finite")  # the stage checks ranges too
    table = pa.table({name: df[name].to_numpy() for name in df.columns})
    OUT.mkdir(exist_ok=True)
    pq.write_table(table, OUT / "raw.parquet")
    if report is not None:  # the figure the RSS targets are relative to
        size = int(df.memory_usage(index=False, deep=True).sum())
        report.write_text(json.dumps({"table_bytes": size, "rows": len(df)}))


def _parts(raw: pa.Table, params: Params) -> np.ndarray:
    """The stage's assignment rule; it hashes rows through pandas, so the key goes there."""
    keys = key_columns(raw.column_names, params.data.id_column)
    return assign(raw.select(keys).to_pandas(), keys, params.split)


def normalize(params: Params) -> None:
    raw = pq.read_table("data/raw.parquet")
    is_train = _parts(raw, params) == TRAIN
    label = params.data.label_column
    # The columns and types the stage wrote (a metadata read): the same Parquet, not a guess.
    target = pq.read_schema("data/normalized.parquet")
    columns = {}
    for field in target:
        x = raw.column(field.name).to_numpy()
        if field.name != label:
            x = np.where(np.isnan(x), np.nanmedian(x[is_train]), x)  # the training median fills
            low, high = x[is_train].min(), x[is_train].max()
            x = (x - low) / (high - low if high > low else 1.0)
        columns[field.name] = pa.array(x).cast(field.type)
    OUT.mkdir(exist_ok=True)
    pq.write_table(pa.table(columns), OUT / "normalized.parquet")


def split(params: Params) -> None:
    raw = pq.read_table("data/raw.parquet")
    normalized = pq.read_table("data/normalized.parquet")
    part = _parts(raw, params)
    (OUT / "split").mkdir(parents=True, exist_ok=True)
    for name, source in ((TRAIN, normalized), (VAL, normalized), (TEST, raw)):
        pq.write_table(source.filter(pa.array(part == name)), OUT / "split" / SPLIT_FILES[name])


def check() -> None:
    """Each floor wrote the stage's table: same columns, types and row count."""
    pairs = {"raw.parquet": "raw.parquet", "normalized.parquet": "normalized.parquet"}
    pairs |= {f"split/{f}": f"split/{f}" for f in SPLIT_FILES.values()}
    for floor_file, stage_file in pairs.items():
        ours, theirs = pq.ParquetFile(OUT / floor_file), pq.ParquetFile(Path("data") / stage_file)
        if ours.schema_arrow.remove_metadata() != theirs.schema_arrow.remove_metadata() or (
            ours.metadata.num_rows != theirs.metadata.num_rows
        ):
            raise SystemExit(
                f"floor/{floor_file} differs from data/{stage_file}: "
                f"{ours.schema_arrow} ({ours.metadata.num_rows} rows) vs "
                f"{theirs.schema_arrow} ({theirs.metadata.num_rows} rows)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("floor", choices=["load", "normalize", "split", "check"])
    parser.add_argument("--report", type=Path)
    args = parser.parse_args()
    if args.floor == "check":
        check()
        return
    params = load_params()
    if args.floor == "load":
        load(params, args.report)
    elif args.floor == "normalize":
        normalize(params)
    else:
        split(params)


if __name__ == "__main__":
    main()
