"""What turns raw rows into network inputs, fitted on training rows only.

Numbers: gaps filled with the training median (plus a 0/1 indicator where the training
rows had gaps). Categories: one slot per category seen in training (the `max_categories`
most frequent), one for missing and one for everything else (rarer or unseen values).
Then every number is standardised (the training rows' mean and standard deviation): what
logistic regression and most networks expect, and robust to one outlying value, which
min-max scaling lets squeeze a column into a corner. Gap indicators and category slots
stay 0/1. The fitted spec travels inside the
model checkpoint; serving/model_code.py applies it to raw rows, here and when MLflow serves
the model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from epochline.core.errors import UserError
from epochline.data.schema import CATEGORICAL, Schema
from epochline.serving.model_code import (
    LIMIT,
    category_texts,
    design,
    design_columns,
    design_inputs,
)

log = logging.getLogger(__name__)


def _numeric_spec(name: str, values: pd.Series, where: str) -> dict[str, Any]:
    x = values.to_numpy() if values.dtype == np.float64 else (
        values.to_numpy(dtype=np.float64, na_value=np.nan))  # fmt: skip
    gaps = np.isnan(x)
    if gaps.all():
        raise UserError(
            f"{where}: column '{name}' has no value in any of the {len(x)} training rows; "
            f"allowed: a column with values: add it to data.exclude"
        )
    return {"name": name, "kind": "numeric", "fill": float(np.median(x[~gaps])),
            "indicator": bool(gaps.any())}  # fmt: skip


def _categorical_spec(name: str, values: pd.Series, max_categories: int) -> dict[str, Any]:
    texts = pd.Series(category_texts(values), dtype=object).dropna()
    counts = texts.value_counts()
    # Most frequent first; ties by text, so the vocabulary never depends on row order.
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    kept = sorted(text for text, _ in ranked[:max_categories])
    if len(ranked) > max_categories:
        log.warning(
            "column '%s': %d distinct values in the training rows; the %d most frequent get "
            "their own input (data.max_categories), the other %d share '<other>'",
            name, len(ranked), max_categories, len(ranked) - max_categories,
        )  # fmt: skip
    return {"name": name, "kind": "categorical", "categories": kept}


def _scale(x: np.ndarray, center: float, scale: float) -> np.ndarray:
    """Standardised, clipped as the served model clips (serving.LIMIT): a value far
    outside the training range stays finite in float32 instead of becoming inf."""
    scaled = (x - center) / scale
    return np.clip(scaled, -LIMIT, LIMIT, out=scaled)


def _moments(inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each column's mean and standard deviation (0: the same value in every row). Taken
    on values divided by the column's largest magnitude, so that squares of values near
    float64's limit do not overflow; NumPy's pairwise sums add in a fixed order on any CPU."""
    if len(inputs) == 0:
        zeros = np.zeros(inputs.shape[1])
        return zeros, zeros
    size = np.abs(inputs).max(axis=0)
    size = np.where(size > 0, size, 1.0)
    unit = inputs / size
    return unit.mean(axis=0) * size, unit.std(axis=0) * size


@dataclass(frozen=True)
class Preprocessor:
    features: tuple[dict[str, Any], ...]
    center: tuple[float, ...]  # per input: the training rows' mean (a 0/1 input: 0)
    deviation: tuple[float, ...]  # and standard deviation (1); 0 where it never varies

    @classmethod
    def fit(
        cls,
        train_rows: pd.DataFrame,
        schema: Schema,
        max_categories: int,
        where: str,
        mask: np.ndarray | None = None,
    ) -> Preprocessor:
        """Fitted on `train_rows`, or on the rows of it that `mask` picks: those are taken
        one column at a time, never as a copy of the whole table."""
        specs: list[dict[str, Any]] = []
        center: list[float] = []
        deviation: list[float] = []
        for f in schema.features:
            values = train_rows[f.name] if mask is None else train_rows[f.name][mask]
            spec = (
                _categorical_spec(f.name, values, max_categories)
                if f.kind == CATEGORICAL
                else _numeric_spec(f.name, values, where)
            )
            inputs = design([spec], pd.DataFrame({f.name: values}, copy=False))
            specs.append(spec)
            if spec["kind"] == "numeric":  # the number standardised; its gap flag kept 0/1
                mean, std = _moments(inputs[:, :1])
                center.append(float(mean[0]))
                deviation.append(float(std[0]))
                flags = inputs[:, 1:]
            else:
                flags = inputs
            # 0/1 inputs stay 0/1 (centre 0, scale 1; 0 where no training row differs): a
            # gap or category one training row in 300 has would otherwise be a +17 input.
            if len(flags):
                low = flags.min(axis=0)
                varies = flags.max(axis=0) > low
            else:
                low, varies = np.zeros(flags.shape[1]), np.zeros(flags.shape[1], dtype=bool)
            # One that never varies is centred on its value: 0 in every training row, so its
            # weights, zeroed (model.silence_unused_inputs), get no gradient and stay 0.
            center += [0.0 if v else float(c) for v, c in zip(varies, low, strict=True)]
            deviation += [1.0 if v else 0.0 for v in varies]
        columns = design_columns(specs)
        if len(set(columns)) < len(columns):
            clash = next(c for c in columns if columns.count(c) > 1)
            raise UserError(f"{where}: two inputs would be named '{clash}'; rename a column")
        return cls(tuple(specs), tuple(center), tuple(deviation))

    @property
    def columns(self) -> list[str]:
        return design_columns(list(self.features))

    @property
    def varies(self) -> np.ndarray:
        """Inputs that vary over the training rows; the others are 0 in every scaled row."""
        return np.asarray(self.deviation) > 0

    @property
    def scale(self) -> np.ndarray:
        # A constant input maps to 0 instead of dividing by zero.
        return np.where(self.varies, np.asarray(self.deviation), 1.0)

    def transform(self, rows: pd.DataFrame, dtype: type = np.float64) -> pd.DataFrame:
        """The scaled network inputs of raw rows, one named column per input.

        Scaled in float64, then stored as `dtype`: float32 gives exactly the tensors the
        network trains on (they are float32), in half the memory and disk.
        """
        # Column by column, the same arithmetic as on the whole matrix, without making it.
        inputs = zip(design_inputs(list(self.features), rows), self.center, self.scale, strict=True)
        scaled: dict[str, np.ndarray] = {
            name: _scale(x, center, scale).astype(dtype, copy=False)
            for name, (x, center, scale) in zip(self.columns, inputs, strict=True)
        }
        return pd.DataFrame(scaled, index=rows.index, columns=self.columns, copy=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": [dict(f) for f in self.features],
            "columns": self.columns,
            "mean": [float(v) for v in self.center],
            "std": [float(v) for v in self.deviation],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessor:
        return cls(tuple(data["features"]), tuple(data["mean"]), tuple(data["std"]))
