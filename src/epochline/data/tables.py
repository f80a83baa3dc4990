"""Parquet tables known without reading them whole: row count, a sample, a digest, a shard.

Train and its tracking use these so that their cost does not grow with the table: the row
count is in the file's footer, a schema needs a few rows, a digest streams the bytes, and
each training process reads only the row groups of its own shard.
"""

from __future__ import annotations

import functools
import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from epochline.core.files import parquet_file

SAMPLE_ROWS = 1000
SAMPLE_GROUPS = 4  # a sample of a large table comes from at least this many places in it


def row_count(path: Path, what: str) -> int:
    return int(parquet_file(path, what).metadata.num_rows)


def head(path: Path, what: str, rows: int = SAMPLE_ROWS) -> pd.DataFrame:
    """The first `rows` rows, reading no more row groups than they need."""
    batches = parquet_file(path, what).iter_batches(batch_size=rows)
    first = next(batches, None)
    if first is None:
        return pq.read_schema(path).empty_table().to_pandas()
    return first.to_pandas()


def file_digest(path: Path) -> str:
    """sha256 of the file's bytes, read in chunks: constant memory, disk speed. Computed
    once per file version (path, size, modification time) in a process."""
    stat = path.stat()
    return _file_digest(path.resolve(), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _file_digest(path: Path, _size: int, _mtime_ns: int) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def digest(paths: dict[str, Path]) -> str:
    """One digest of named files: same names and bytes, same digest. The writers are
    deterministic (same rows, same bytes), so this identifies the data train consumed."""
    h = hashlib.sha256()
    for name, path in sorted(paths.items()):
        h.update(f"{name}\x1f{file_digest(path)}\x1e".encode())
    return h.hexdigest()[:16]


def shard_bounds(n_rows: int, rank: int, world_size: int) -> tuple[int, int]:
    """Rows [start, stop) of one process: contiguous, sizes differing by at most one."""
    return n_rows * rank // world_size, n_rows * (rank + 1) // world_size


def read_rows(path: Path, what: str, start: int, stop: int, columns: list[str]) -> pd.DataFrame:
    """Rows [start, stop) of `columns`, reading only the row groups that hold them."""
    parquet = parquet_file(path, what)
    groups, first_row, offset = [], None, 0
    for i in range(parquet.metadata.num_row_groups):
        n = parquet.metadata.row_group(i).num_rows
        if offset < stop and offset + n > start:
            groups.append(i)
            first_row = offset if first_row is None else first_row
        offset += n
    if not groups or first_row is None:
        return parquet.schema_arrow.empty_table().select(columns).to_pandas()
    table = parquet.read_row_groups(groups, columns=columns)
    return table.slice(start - first_row, stop - start).to_pandas()


def sample_rows(path: Path, what: str, columns: list[str], limit: int) -> pd.DataFrame:
    """At most `limit` rows spread over the whole table: all of them when it has no more,
    else row groups at an even stride from the first to the last (enough for `limit` rows,
    and at least SAMPLE_GROUPS of them), then every k-th of their rows. It reads about
    `limit` rows or SAMPLE_GROUPS row groups, whichever is more: not the whole table."""
    parquet = parquet_file(path, what)
    meta = parquet.metadata
    if meta.num_rows <= limit:
        return read_rows(path, what, 0, meta.num_rows, columns)
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    wanted = max(math.ceil(len(sizes) * limit / meta.num_rows), min(SAMPLE_GROUPS, len(sizes)))
    while True:
        step = (len(sizes) - 1) / max(wanted - 1, 1)
        groups = sorted({round(i * step) for i in range(wanted)})
        if sum(sizes[g] for g in groups) >= limit or wanted >= len(sizes):
            break
        wanted += 1
    table = parquet.read_row_groups(groups, columns=columns)
    keep = np.linspace(0, table.num_rows - 1, min(limit, table.num_rows)).round().astype(np.int64)
    return table.take(keep).to_pandas()
