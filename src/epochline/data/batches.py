"""New labelled batches for the incoming folder: the synthetic stand-in for new data."""

from __future__ import annotations

import re
from pathlib import Path

from epochline.core.errors import UserError
from epochline.core.files import write_with
from epochline.core.params import DataParams
from epochline.data.sources import make_synthetic, table_files

_NUMBERED = re.compile(r"^batch-(\d+)\.")


def next_batch_number(folder: Path) -> int:
    numbers = [int(m.group(1)) for p in table_files(folder) if (m := _NUMBERED.match(p.name))]
    return max(numbers, default=0) + 1


def write_batch(params: DataParams, rows: int, drift: float, seed: int | None) -> Path:
    """Write `batch-NNNN.csv`; the same task as data.source synthetic, optionally shifted."""
    if params.source != "synthetic":
        raise UserError(
            f"new-batch makes synthetic rows, but data.source is '{params.source}'; "
            f"put your own labelled files into {params.incoming_dir} instead"
        )
    folder = Path(params.incoming_dir)
    folder.mkdir(parents=True, exist_ok=True)
    number = next_batch_number(folder)
    batch = make_synthetic(
        rows,
        params.n_features,
        params.seed,
        params.label_column,
        # Streams apart from the base table's (): no batch repeats the base rows.
        stream=(2, number) if seed is None else (3, seed),
        shift=drift,
    )
    path = folder / f"batch-{number:04d}.csv"
    # The temp file is hidden (.name), so a pipeline reading the folder meanwhile skips it.
    write_with(path, lambda tmp: batch.to_csv(tmp, index=False))
    return path
