"""Stage load: build the raw table from the source and any incoming batches."""

import logging

from epochline.core import paths
from epochline.core.files import write_json, write_parquet
from epochline.core.params import load_params
from epochline.core.runner import run_main
from epochline.data.sources import assemble, load_parts, manifest

log = logging.getLogger(__name__)


def main() -> None:
    params = load_params()
    schema, parts = load_parts(params.data)
    table = assemble(parts, schema, params.data)
    write_parquet(table, paths.RAW)
    write_json(manifest(parts), paths.RAW_MANIFEST)
    write_json(schema.to_dict(), paths.SCHEMA)
    positives = int(table[params.data.label_column].sum())
    kinds = ", ".join(f"{f.name} ({f.kind})" for f in schema.features)
    log.info("wrote %s: %d rows x %d columns, %d positive (%r); features: %s",
             paths.RAW, *table.shape, positives, schema.classes[1], kinds)  # fmt: skip


if __name__ == "__main__":
    run_main(main)
