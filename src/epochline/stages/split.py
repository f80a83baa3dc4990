"""Stage split: write train and val (normalised) and test (raw) by the stable assignment."""

import logging

from epochline import paths
from epochline.files import read_parquet, write_parquet
from epochline.params import load_params
from epochline.runner import run_main
from epochline.splitting import TEST, TRAIN, VAL, assign, key_columns

log = logging.getLogger(__name__)


def main() -> None:
    params = load_params()
    raw = read_parquet(paths.RAW, "raw table")
    normalized = read_parquet(paths.NORMALIZED, "normalised table")
    # The key is the raw row: normalised values move whenever the scaler is refitted.
    part = assign(raw, key_columns(list(raw.columns), params.data.id_column), params.split)

    write_parquet(normalized[part == TRAIN], paths.TRAIN)
    write_parquet(normalized[part == VAL], paths.VAL)
    write_parquet(raw[part == TEST], paths.TEST)
    label = params.data.label_column
    for name, rows in (("train", part == TRAIN), ("val", part == VAL), ("test", part == TEST)):
        log.info("%s: %d rows, %.1f%% positive", name, rows.sum(), 100 * raw[label][rows].mean())


if __name__ == "__main__":
    run_main(main)
