"""Stage normalize: fit the preprocessing (fills, categories, scaling) on the training rows
only, and write every row as network inputs (float32, as the network takes them)."""

import logging

import numpy as np
import pandas as pd
import pyarrow as pa

from epochline.core import paths
from epochline.core.errors import UserError
from epochline.core.files import (
    arrow_table,
    read_json,
    read_parquet,
    row_slices,
    write_json,
    write_parquet_slices,
)
from epochline.core.params import load_params
from epochline.core.runner import run_main
from epochline.data import splitting
from epochline.data.preprocessing import Preprocessor
from epochline.data.schema import Schema

log = logging.getLogger(__name__)


def _inputs(preprocessor: Preprocessor, rows: pd.DataFrame, label: str) -> pa.Table:
    normalized = preprocessor.transform(rows, np.float32)
    normalized[label] = rows[label]
    return arrow_table(normalized)


def main() -> None:
    params = load_params()
    raw = read_parquet(paths.RAW, "raw table")
    schema = Schema.from_dict(read_json(paths.SCHEMA, "schema"))

    is_train = splitting.is_train(raw, schema.id_column, params.split)
    if not is_train.any():
        raise UserError(
            f"{paths.RAW}: none of {len(raw)} rows falls in train; "
            "raise data.n_rows or lower split.test_size / split.val_size"
        )
    where = f"{paths.RAW} (training rows)"
    preprocessor = Preprocessor.fit(raw, schema, params.data.max_categories, where, is_train)
    # A row group at a time: the inputs of the whole table are never in memory at once.
    slices = (_inputs(preprocessor, raw.iloc[rows], schema.label) for rows in row_slices(len(raw)))
    write_parquet_slices(slices, paths.NORMALIZED)
    write_json(preprocessor.to_dict(), paths.PREPROCESSOR)
    log.info("fitted on %d of %d rows: %d features -> %d inputs",
             is_train.sum(), len(raw), len(schema.features), len(preprocessor.columns))  # fmt: skip


if __name__ == "__main__":
    run_main(main)
