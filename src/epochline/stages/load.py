"""Stage load: build the raw table from the source and any incoming batches."""

import logging

from epochline import paths
from epochline.data import assemble, load_parts, manifest
from epochline.files import write_json, write_parquet
from epochline.params import load_params
from epochline.runner import run_main

log = logging.getLogger(__name__)


def main() -> None:
    params = load_params()
    parts = load_parts(params.data)
    table = assemble(parts, params.data)
    write_parquet(table, paths.RAW)
    write_json(manifest(parts), paths.RAW_MANIFEST)
    positives = int(table[params.data.label_column].sum())
    log.info("wrote %s: %d rows x %d columns, %d positive", paths.RAW, *table.shape, positives)


if __name__ == "__main__":
    run_main(main)
