"""Stage split: write train and val (normalised) and test (raw) by the stable assignment."""

import logging

import numpy as np
import pandas as pd

from epochline import paths
from epochline.errors import UserError
from epochline.files import read_parquet, write_parquet
from epochline.params import load_params
from epochline.runner import run_main
from epochline.splitting import TEST, TRAIN, VAL, assign, key_columns

log = logging.getLogger(__name__)


def _check_parts(label: pd.Series, part: np.ndarray) -> None:
    """Every part needs rows, and test both classes, or its metrics mean nothing."""
    counts = {name: int((part == name).sum()) for name in (TRAIN, VAL, TEST)}
    if min(counts.values()) == 0:
        raise UserError(
            f"{paths.RAW}: split gives {counts}; every part needs rows: raise data.n_rows "
            "or adjust split.test_size / split.val_size"
        )
    if label[part == TEST].nunique() < 2:
        raise UserError(
            f"{paths.RAW}: the {counts[TEST]} test rows hold one class only; raise data.n_rows "
            "or split.test_size so that both classes are tested"
        )


def main() -> None:
    params = load_params()
    raw = read_parquet(paths.RAW, "raw table")
    normalized = read_parquet(paths.NORMALIZED, "normalised table")
    # The key is the raw row: normalised values move whenever the scaler is refitted.
    part = assign(raw, key_columns(list(raw.columns), params.data.id_column), params.split)

    label = params.data.label_column
    _check_parts(raw[label], part)
    write_parquet(normalized[part == TRAIN], paths.TRAIN)
    write_parquet(normalized[part == VAL], paths.VAL)
    write_parquet(raw[part == TEST], paths.TEST)
    for name, rows in (("train", part == TRAIN), ("val", part == VAL), ("test", part == TEST)):
        log.info("%s: %d rows, %.1f%% positive", name, rows.sum(), 100 * raw[label][rows].mean())


if __name__ == "__main__":
    run_main(main)
