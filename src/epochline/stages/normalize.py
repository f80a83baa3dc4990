"""Stage normalize: min-max scale every feature, fitted on the training rows only."""

import logging

from epochline import paths
from epochline.errors import UserError
from epochline.files import read_parquet, write_json, write_parquet
from epochline.params import load_params
from epochline.runner import run_main
from epochline.scaling import MinMaxScaler
from epochline.splitting import TRAIN, assign, key_columns

log = logging.getLogger(__name__)


def main() -> None:
    params = load_params()
    raw = read_parquet(paths.RAW, "raw table")
    id_column = params.data.id_column
    features = params.data.feature_columns(raw.columns)

    is_train = assign(raw, key_columns(list(raw.columns), id_column), params.split) == TRAIN
    if not is_train.any():
        raise UserError(
            f"{paths.RAW}: none of {len(raw)} rows falls in train; "
            "raise data.n_rows or lower split.test_size / split.val_size"
        )
    scaler = MinMaxScaler.fit(raw[is_train], features)
    write_parquet(scaler.transform(raw), paths.NORMALIZED)
    write_json(scaler.to_dict(), paths.SCALER)
    log.info("fitted scaler on %d of %d rows, %d features", is_train.sum(), len(raw), len(features))


if __name__ == "__main__":
    run_main(main)
