"""Stage split: write train and val (normalised) and test (raw) by the stable assignment.

Both tables are read and written a row group at a time, so memory stays flat at any size:
one pass over the raw rows assigns every row and writes the test rows, one pass over the
normalised rows writes train and val. A failed check leaves no output behind.
"""

import logging
from collections.abc import Iterator
from contextlib import ExitStack

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from epochline.core import paths
from epochline.core.errors import UserError
from epochline.core.files import parquet_file, parquet_writer
from epochline.core.params import SplitParams, load_params
from epochline.core.runner import run_main
from epochline.data.splitting import PARTS, TEST, TRAIN, VAL, key_columns, part_codes

log = logging.getLogger(__name__)


def _row_groups(file: pq.ParquetFile) -> Iterator[pa.Table]:
    # Whole row groups: iter_batches holds a row group's pages besides the batch it yields.
    for i in range(file.num_row_groups):
        yield file.read_row_group(i, use_pandas_metadata=True)


def _write_rows(writer: pq.ParquetWriter, batch: pa.Table, rows: np.ndarray) -> None:
    if rows.any():  # no empty row groups in the output
        writer.write_table(batch.filter(pa.array(rows)))


def _check_parts(counts: dict[str, int], test_classes: set[object]) -> None:
    """Every part needs rows, and test both classes, or its metrics mean nothing."""
    if min(counts.values()) == 0:
        raise UserError(
            f"{paths.RAW}: split gives {counts}; every part needs rows: raise data.n_rows "
            "or adjust split.test_size / split.val_size"
        )
    if len(test_classes) < 2:
        raise UserError(
            f"{paths.RAW}: the {counts[TEST]} test rows hold one class only; raise data.n_rows "
            "or split.test_size so that both classes are tested"
        )


def _test_rows(
    raw: pq.ParquetFile, test: pq.ParquetWriter, id_column: str | None, label: str,
    split: SplitParams,
) -> tuple[np.ndarray, np.ndarray, set[object]]:  # fmt: skip
    """Write the raw test rows; each row's part code, its label and the test rows' classes."""
    codes, labels, test_classes = [], [], set()
    for batch in _row_groups(raw):
        rows = batch.to_pandas(split_blocks=True)
        part = part_codes(rows, key_columns(list(rows.columns), id_column), split)
        is_test = part == PARTS.index(TEST)
        _write_rows(test, batch, is_test)
        test_classes.update(pd.unique(rows[label][is_test].dropna()))
        codes.append(part)
        labels.append(rows[label].to_numpy())
    return np.concatenate(codes), np.concatenate(labels), test_classes


def main() -> None:
    params = load_params()
    label = params.data.label_column
    raw = parquet_file(paths.RAW, "raw table")
    normalized = parquet_file(paths.NORMALIZED, "normalised table")
    if raw.metadata.num_rows != normalized.metadata.num_rows:
        raise UserError(
            f"{paths.NORMALIZED}: {normalized.metadata.num_rows} rows, but {paths.RAW} has "
            f"{raw.metadata.num_rows}; run normalize again (dvc repro)"
        )
    with ExitStack() as outputs:
        test = outputs.enter_context(parquet_writer(paths.TEST, raw.schema_arrow))
        codes, labels, test_classes = _test_rows(raw, test, params.data.id_column, label,
                                                 params.split)  # fmt: skip
        counts = {name: int((codes == i).sum()) for i, name in enumerate(PARTS)}
        _check_parts(counts, test_classes)
        writers = {
            PARTS.index(name): outputs.enter_context(parquet_writer(path, normalized.schema_arrow))
            for name, path in ((TRAIN, paths.TRAIN), (VAL, paths.VAL))
        }
        start = 0
        for batch in _row_groups(normalized):
            part = codes[start : start + len(batch)]
            start += len(batch)
            for code, writer in writers.items():
                _write_rows(writer, batch, part == code)
    for i, name in enumerate(PARTS):
        rows = codes == i
        log.info("%s: %d rows, %.1f%% positive", name, rows.sum(), 100 * labels[rows].mean())


if __name__ == "__main__":
    run_main(main)
