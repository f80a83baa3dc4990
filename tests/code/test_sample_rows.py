"""tables.sample_rows: the yardsticks' training rows, spread over a table it never reads whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from epochline.data import tables


def _table(path: Path, rows: int, group: int) -> Path:
    frame = pd.DataFrame({"row": np.arange(rows), "x": np.arange(rows) * 0.5})
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=group)
    return path


def test_a_table_at_most_the_limit_is_read_whole(tmp_path: Path) -> None:
    path = _table(tmp_path / "t.parquet", 1000, 100)
    rows = tables.sample_rows(path, "t", ["row", "x"], 1000)
    assert rows["row"].tolist() == list(range(1000))


def test_a_larger_table_gives_the_limit_spread_from_first_to_last_row(tmp_path: Path) -> None:
    path = _table(tmp_path / "t.parquet", 1_000_000, 65_536)
    rows = tables.sample_rows(path, "t", ["row"], 100_000)
    taken = rows["row"].to_numpy()
    assert len(taken) == 100_000 and (np.diff(taken) > 0).all()  # distinct, in table order
    assert taken[0] == 0 and taken[-1] == 999_999
    # From row groups all over the table (at least four), not from its start only.
    assert len(np.unique(taken // 65_536)) >= tables.SAMPLE_GROUPS


def test_the_same_table_gives_the_same_rows(tmp_path: Path) -> None:
    path = _table(tmp_path / "t.parquet", 300_000, 10_000)
    first = tables.sample_rows(path, "t", ["row"], 50_000)
    assert first.equals(tables.sample_rows(path, "t", ["row"], 50_000))
