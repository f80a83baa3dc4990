"""Min-max scaling fitted on training rows only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class MinMaxScaler:
    columns: tuple[str, ...]
    minimum: tuple[float, ...]
    maximum: tuple[float, ...]

    @classmethod
    def fit(cls, df: pd.DataFrame, columns: list[str]) -> MinMaxScaler:
        values = df[columns].to_numpy(dtype=np.float64)
        return cls(tuple(columns), tuple(values.min(axis=0)), tuple(values.max(axis=0)))

    @property
    def span(self) -> np.ndarray:
        span = np.asarray(self.maximum) - np.asarray(self.minimum)
        # A constant feature maps to 0 instead of dividing by zero.
        return np.where(span > 0, span, 1.0)

    def transform(self, df: pd.DataFrame) -> pd.DataFrame:
        out = df.copy()
        values = df[list(self.columns)].to_numpy(dtype=np.float64)
        out[list(self.columns)] = (values - np.asarray(self.minimum)) / self.span
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": list(self.columns),
            "min": [float(v) for v in self.minimum],
            "max": [float(v) for v in self.maximum],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MinMaxScaler:
        return cls(tuple(data["columns"]), tuple(data["min"]), tuple(data["max"]))
