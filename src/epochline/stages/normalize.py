"""Stage normalize: fit the preprocessing (fills, categories, scaling) on the training rows
only, and write every row as network inputs."""

import logging

from epochline import paths
from epochline.errors import UserError
from epochline.files import read_json, read_parquet, write_json, write_parquet
from epochline.params import load_params
from epochline.preprocessing import Preprocessor
from epochline.runner import run_main
from epochline.schema import Schema
from epochline.splitting import TRAIN, assign, key_columns

log = logging.getLogger(__name__)


def main() -> None:
    params = load_params()
    raw = read_parquet(paths.RAW, "raw table")
    schema = Schema.from_dict(read_json(paths.SCHEMA, "schema"))

    is_train = assign(raw, key_columns(list(raw.columns), schema.id_column), params.split) == TRAIN
    if not is_train.any():
        raise UserError(
            f"{paths.RAW}: none of {len(raw)} rows falls in train; "
            "raise data.n_rows or lower split.test_size / split.val_size"
        )
    where = f"{paths.RAW} (training rows)"
    preprocessor = Preprocessor.fit(raw[is_train], schema, params.data.max_categories, where)
    normalized = preprocessor.transform(raw)
    normalized[schema.label] = raw[schema.label]
    write_parquet(normalized, paths.NORMALIZED)
    write_json(preprocessor.to_dict(), paths.PREPROCESSOR)
    log.info("fitted on %d of %d rows: %d features -> %d inputs",
             is_train.sum(), len(raw), len(schema.features), len(preprocessor.columns))  # fmt: skip


if __name__ == "__main__":
    run_main(main)
