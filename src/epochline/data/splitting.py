"""Row assignment to train / val / test from a stable key, not a shuffle.

A row's assignment depends only on its own content (or its id) and the split seed, so
appending rows never moves an existing row: a model retrained on more data is still
compared on rows that no model trained on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from epochline.core.params import SplitParams

TRAIN, VAL, TEST = "train", "val", "test"
PARTS = (TRAIN, VAL, TEST)  # part_codes gives each row its part's index here

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads every input bit over the whole 64-bit output."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def uniform_keys(df: pd.DataFrame, key_columns: list[str], seed: int) -> np.ndarray:
    """One number in [0, 1) per row, a pure function of the row's key columns and the seed."""
    row_hash = pd.util.hash_pandas_object(df[key_columns], index=False).to_numpy(np.uint64)
    with np.errstate(over="ignore"):
        mixed = _mix(row_hash ^ _mix(np.array([seed], dtype=np.uint64)))
    return (mixed >> np.uint64(11)).astype(np.float64) / float(2**53)


def part_codes(df: pd.DataFrame, key_columns: list[str], params: SplitParams) -> np.ndarray:
    """Each row's part as its index in PARTS (int8): `assign` without a string per row."""
    u = uniform_keys(df, key_columns, params.seed)
    within_rest = (u - params.test_size) / (1.0 - params.test_size)
    val_or_train = np.where(within_rest < params.val_size, np.int8(1), np.int8(0))
    return np.where(u < params.test_size, np.int8(2), val_or_train)


def assign(df: pd.DataFrame, key_columns: list[str], params: SplitParams) -> np.ndarray:
    """'train', 'val' or 'test' per row. val is a `val_size` share of the non-test rows."""
    return np.array(PARTS)[part_codes(df, key_columns, params)]


def key_columns(columns: list[str], id_column: str | None) -> list[str]:
    """The id column when one is configured, else the whole row's content."""
    return [id_column] if id_column is not None else list(columns)


def is_train(df: pd.DataFrame, id_column: str | None, params: SplitParams) -> np.ndarray:
    """The rows that train (and the preprocessing fitted for it) may see: the one rule."""
    keys = key_columns(list(df.columns), id_column)
    return part_codes(df, keys, params) == PARTS.index(TRAIN)
