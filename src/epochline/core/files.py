"""Atomic file writes and small readers shared by the stages."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from epochline.core.errors import UserError


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; rename it over `path` only if the block succeeds.

    A reader never sees a half-written file, and a failure leaves the old file in place.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes files 0600; give the output the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        tmp_path.chmod(0o666 & ~umask)
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_with(path: Path, writer: Callable[[Path], Any]) -> None:
    with atomic_path(path) as tmp:
        writer(tmp)


def write_bytes(data: bytes, path: Path) -> None:
    write_with(path, lambda tmp: tmp.write_bytes(data))


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    write_with(path, lambda tmp: df.to_parquet(tmp, index=False))


# pyarrow's default row group length: a table written in slices of this many rows has the
# same row groups as one written whole, so a stage can hold one slice of its output at a time.
ROW_GROUP_ROWS = 1024 * 1024


def row_slices(n_rows: int, size: int = ROW_GROUP_ROWS) -> Iterator[slice]:
    """Consecutive slices over `n_rows` rows; one empty slice for an empty table."""
    for start in range(0, max(n_rows, 1), size):
        yield slice(start, min(start + size, n_rows))


def arrow_table(df: pd.DataFrame) -> pa.Table:
    """A frame as to_parquet converts it (pandas metadata included, no index)."""
    return pa.Table.from_pandas(df, preserve_index=False)


@contextmanager
def parquet_writer(path: Path, schema: pa.Schema) -> Iterator[pq.ParquetWriter]:
    """A Parquet writer on a temp file, renamed over `path` only if the block succeeds.

    Each `write_table` call makes (at least) one row group: write slices of at most
    ROW_GROUP_ROWS rows to get the file one `to_parquet` call would have written.
    """
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        yield writer


def write_parquet_slices(slices: Iterable[pa.Table], path: Path) -> None:
    """One table from its slices, each a row group; the first slice's schema is the file's."""
    parts = iter(slices)
    first = next(parts)
    with parquet_writer(path, first.schema) as writer:
        writer.write_table(first)
        for part in parts:
            writer.write_table(part)


def write_json(data: Any, path: Path, sort_keys: bool = True) -> None:
    """Keys sorted, unless the caller's order is the point (the columns of dvc exp show)."""
    text = json.dumps(data, indent=2, sort_keys=sort_keys) + "\n"
    write_with(path, lambda tmp: tmp.write_text(text))


def json_digest(data: Any) -> str:
    """A digest of JSON-able data that does not depend on key order."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: {what} not found; run the earlier stages (dvc repro)") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: {what} is not valid JSON ({exc.msg})") from None


def parquet_file(path: Path, what: str) -> pq.ParquetFile:
    """An earlier stage's Parquet output, opened to read by column or row group."""
    if not path.exists():
        raise UserError(f"{path}: {what} not found; run the earlier stages (dvc repro)")
    return pq.ParquetFile(path, pre_buffer=False)


def read_parquet(path: Path, what: str) -> pd.DataFrame:
    # A column at a time, each its own block: Arrow reads a column in many chunks, which
    # become one array by a copy, so reading the table whole holds it twice (and pandas'
    # 2-D blocks copy it once more). This way only one column is ever held twice.
    file = parquet_file(path, what)
    columns = [
        file.read(columns=[name], use_pandas_metadata=True).to_pandas(self_destruct=True)
        for name in file.schema_arrow.names
    ]
    return pd.DataFrame({name: df[name] for df in columns for name in df.columns}, copy=False)
