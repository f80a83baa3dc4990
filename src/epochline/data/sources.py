"""Where the raw table comes from: the synthetic default, a user's files, incoming batches."""

from __future__ import annotations

import csv
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from epochline.core.errors import UserError, first_line
from epochline.core.files import row_slices
from epochline.core.params import DataParams
from epochline.data.schema import LabelCoder, Schema, check_ranges, conform, infer

log = logging.getLogger(__name__)

TABLE_SUFFIXES = (".csv", ".parquet")
_DRAW_ROWS = 1 << 15  # 2.6 MB blocks at 10 features: they stay in cache, malloc reuses them


def feature_names(n_features: int) -> list[str]:
    return [f"x{i}" for i in range(n_features)]


def make_synthetic(
    n_rows: int,
    n_features: int,
    seed: int,
    label: str = "label",
    stream: tuple[int, ...] = (),
    shift: float = 0.0,
) -> pd.DataFrame:
    """A seeded binary task with raw, un-normalised feature scales.

    The task (scales, offsets, weights) depends on `seed` only; `stream` draws other rows
    of the same task, and `shift` moves every feature by that many standard deviations
    (drift) without changing how the label depends on them.
    """
    scale_rng = np.random.default_rng([seed, 0])
    scales = 10 ** scale_rng.uniform(-1.3, 1.0, n_features)
    offsets = scales * scale_rng.uniform(1.0, 3.0, n_features)
    weights = scale_rng.normal(0.0, 1.0, min(n_features, 5))

    rng = np.random.default_rng([seed, 1, n_rows, *stream])
    # Drawn a block of rows at a time, in the order one (n_rows, n_features) draw takes them,
    # so the numbers are the same; each block is scaled straight into its rows of the
    # columns (column-major: every column one contiguous array, the frame shares them), by
    # the same operations in the same order, so the same bits. No whole-table temporaries:
    # at 10 M rows those cost more than drawing the numbers.
    x = np.empty((n_rows, n_features), order="F")
    logit = np.empty(n_rows)
    for rows in row_slices(n_rows, _DRAW_ROWS):
        latent = rng.normal(0.0, 1.0, (rows.stop - rows.start, n_features))
        logit[rows] = _logit(latent[:, : weights.size], weights)
        for j, column in enumerate(x[rows].T):  # column j's rows: written in place
            # drift moves the features, not the task (covariate shift)
            np.add(latent[:, j], shift, out=column)
            column *= scales[j]
            column += offsets[j]
    spread = np.sqrt(weights @ weights)
    if n_features >= 2:
        spread = np.sqrt(spread**2 + 0.64)
    # Fixed noise and threshold: every batch has the same p(label | features).
    y = (logit + rng.normal(0.0, 0.15 * spread, n_rows) > 0).astype("int64")

    df = pd.DataFrame({name: x[:, i] for i, name in enumerate(feature_names(n_features))},
                      copy=False)  # fmt: skip
    df[label] = y
    return df


def _logit(informative: np.ndarray, weights: np.ndarray) -> np.ndarray:
    logit = informative @ weights
    if informative.shape[1] >= 2:
        # A product term, so the hidden layer has something a linear model can't do.
        logit = logit + 0.8 * informative[:, 0] * informative[:, 1]
    return logit


_SEPARATORS = {";": "semicolon", "\t": "tab", "|": "pipe"}


def read_table(path: Path) -> pd.DataFrame:
    """A .parquet file, or a comma-separated UTF-8 .csv (a byte-order mark is fine)."""
    try:
        if path.suffix == ".parquet":
            _check_unique_columns(pq.read_schema(path).names, path)
            return pd.read_parquet(path)
        df = pd.read_csv(path, encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except pd.errors.EmptyDataError:
        raise UserError(f"{path}: file is empty; allowed: a table with a header and rows") from None
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{path}: is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
            "allowed: UTF-8 CSV: convert it, e.g. iconv -f latin1 -t utf-8"
        ) from None
    except (pd.errors.ParserError, OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot be read as a table ({first_line(exc)})") from None
    _check_unique_columns(_csv_header(path), path)
    header = str(df.columns[0])
    separator = next((name for sep, name in _SEPARATORS.items() if sep in header), None)
    if len(df.columns) == 1 and separator is not None:
        raise UserError(
            f"{path}: reads as one column ({header[:40]!r}): the file looks {separator}-separated; "
            "allowed: comma-separated CSV (UTF-8) or Parquet"
        )
    return df


def _csv_header(path: Path) -> list[str]:
    """The header as the file spells it: pandas renames a repeated name (x1, x1.1)."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        return next((row for row in csv.reader(f) if row), [])  # pandas skips blank lines


def _check_unique_columns(names: list[str], path: Path) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(names, start=1):
        if name in seen:
            raise UserError(
                f"{path}: column '{name}' appears twice (columns {seen[name]} and {i}); "
                "allowed: one column per name: rename or drop one of them"
            )
        seen[name] = i


def table_files(folder: Path) -> list[Path]:
    """Batch files in name order; hidden files (.gitkeep, partial writes) are skipped."""
    return sorted(
        p for p in folder.iterdir() if p.suffix in TABLE_SUFFIXES and not p.name.startswith(".")
    )


def _source_files(source: Path) -> list[Path]:
    if source.is_dir():
        files = table_files(source)
        if not files:
            raise UserError(f"data.source: folder {source} holds no .csv or .parquet files")
        return files
    if not source.exists():
        raise UserError(
            f"data.source: file {source} not found; allowed: 'synthetic', a .csv/.parquet file "
            "or a folder of them"
        )
    if source.suffix not in TABLE_SUFFIXES:
        raise UserError(f"data.source: {source} is not a .csv or .parquet file")
    return [source]


def _base(params: DataParams) -> list[tuple[str, Path | pd.DataFrame]]:
    if params.source == "synthetic":
        if params.id_column is not None:
            raise UserError(
                f"data.id_column: '{params.id_column}' is set, but synthetic data has no id "
                "column; allowed: null with data.source synthetic"
            )
        rows = make_synthetic(params.n_rows, params.n_features, params.seed, params.label_column)
        return [("synthetic", rows)]
    return [(str(f), f) for f in _source_files(Path(params.source))]


def _frame(source: Path | pd.DataFrame) -> pd.DataFrame:
    return source if isinstance(source, pd.DataFrame) else read_table(source)


def load_parts(params: DataParams) -> tuple[Schema, list[tuple[str, pd.DataFrame]]]:
    """The schema, then the base table and every incoming batch, in name order, each file
    conformed to the schema inferred from the first one."""
    incoming = Path(params.incoming_dir)
    batches = table_files(incoming) if incoming.is_dir() else []
    (first_where, first_source), *rest = _base(params) + [(str(b), b) for b in batches]
    first = _frame(first_source)
    schema = infer(first, first_where, params)
    labels = LabelCoder(params.label_column, params.positive_class)
    parts = [(first_where, conform(first, first_where, schema, labels))]
    parts += [(where, conform(_frame(source), where, schema, labels)) for where, source in rest]
    schema = replace(schema, classes=labels.classes(params.source))
    log.info(
        "source %s: %d rows; %d incoming batch(es)", params.source, len(parts[0][1]), len(batches)
    )
    return schema, parts


def _check_ids_unique(parts: list[tuple[str, pd.DataFrame]], id_column: str) -> None:
    seen: dict[str, str] = {}
    for where, df in parts:
        for value in df[id_column]:
            if value in seen:
                raise UserError(
                    f"{where}: id {value!r} in column '{id_column}' is already in {seen[value]}; "
                    "ids must be unique across all files"
                )
            seen[value] = where


def assemble(
    parts: list[tuple[str, pd.DataFrame]], schema: Schema, params: DataParams
) -> pd.DataFrame:
    """One table from the parts, after the checks that span files."""
    if params.id_column is not None:
        _check_ids_unique(parts, params.id_column)
    frames = [df for _, df in parts]
    table = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    if len(table) < params.min_rows:
        raise UserError(
            f"{params.source}: {len(table)} rows, fewer than data.min_rows = {params.min_rows}"
        )
    check_ranges(parts, schema)
    return table


def load_raw(params: DataParams) -> pd.DataFrame:
    schema, parts = load_parts(params)
    return assemble(parts, schema, params)


def manifest(parts: list[tuple[str, pd.DataFrame]]) -> list[dict[str, object]]:
    """Which file each run of rows in the raw table came from, in table order."""
    return [{"file": where, "rows": len(df)} for where, df in parts]
