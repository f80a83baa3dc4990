"""The raw table's schema: inferred from the base table, then held fixed for every batch.

Every column's kind is decided once, from the first source file: a feature is numeric or
categorical; dates and free text are refused with a line that says how to exclude them.
Each file is then conformed to that schema (same columns, same kinds, canonical types),
so that a row's bytes, and with them its split assignment, never depend on its neighbours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from epochline.core.errors import UserError
from epochline.core.params import DataParams
from epochline.serving.model_code import category_text, category_texts

NUMERIC, CATEGORICAL = "numeric", "categorical"
# How a source file holds a column's values; a batch must hold them the same way.
NUMBER, TEXT, BOOL = "number", "text", "bool"

_DATE = re.compile(
    r"\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?"
    r"|\d{1,2}[/.]\d{1,2}[/.]\d{2,4}( \d{1,2}:\d{2}(:\d{2})?)?"
    r"|\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?"
)
FREE_TEXT_WORDS = 3  # a text column whose typical value has this many words is prose


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str  # NUMERIC or CATEGORICAL
    values: str  # NUMBER, TEXT or BOOL: how the base table holds them


@dataclass(frozen=True)
class Schema:
    columns: tuple[str, ...]  # every column of the base table, in its order
    label: str
    id_column: str | None
    features: tuple[Feature, ...]
    classes: tuple[Any, Any] = (None, None)  # (negative, positive), as the data spells them

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": list(self.columns),
            "label": {"column": self.label, "negative": self.classes[0],
                      "positive": self.classes[1]},
            "id_column": self.id_column,
            "features": [{"name": f.name, "kind": f.kind, "values": f.values}
                         for f in self.features],
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schema:
        label = data["label"]
        features = tuple(Feature(f["name"], f["kind"], f["values"]) for f in data["features"])
        return cls(tuple(data["columns"]), label["column"], data["id_column"], features,
                   (label["negative"], label["positive"]))  # fmt: skip


def _at(series: pd.Series, mask: np.ndarray | pd.Series) -> str:
    """'value' at row N (1 = first data row) of the first row where mask holds."""
    i = int(np.flatnonzero(np.asarray(mask))[0])
    return f"{_plain(series.iloc[i])!r} at row {i + 1}"


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (2, not np.int64(2))."""
    return value.item() if isinstance(value, np.generic) else value


def holds(series: pd.Series) -> str | None:
    """How a file holds a column: NUMBER, TEXT, BOOL, 'date', or None when all missing."""
    if series.isna().all():
        return None
    if pd.api.types.is_bool_dtype(series):
        return BOOL
    if pd.api.types.is_numeric_dtype(series):
        return NUMBER
    if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series):
        return "date"
    return TEXT


def _exclude_hint(name: str) -> str:
    return f"add it to data.exclude (data.exclude: [{name}])"


def _text_kind(series: pd.Series, name: str, where: str) -> None:
    """Refuse text that is not a category: numbers mixed in, dates, prose."""
    values = series.dropna().astype(str)
    numbers = pd.to_numeric(values, errors="coerce").notna()
    if _DATE.fullmatch(values.iloc[0]) and values.str.fullmatch(_DATE).mean() >= 0.9:
        raise UserError(
            f"{where}: column '{name}' holds dates (e.g. {values.iloc[0]!r}); dates are not "
            f"features: {_exclude_hint(name)}, or derive a number from it upstream"
        )
    if numbers.any() and not numbers.all():
        raise UserError(
            f"{where}: column '{name}' mixes numbers and text ({_at(values, numbers)}, "
            f"{_at(values, ~numbers)}); allowed: one kind per column: fix the values, or "
            f"declare it categorical (data.categorical: [{name}])"
        )
    if values.str.split().str.len().median() >= FREE_TEXT_WORDS:
        raise UserError(
            f"{where}: column '{name}' holds free text (e.g. {values.iloc[0][:40]!r}); "
            f"allowed: numbers and categories: {_exclude_hint(name)}"
        )


def _kind(series: pd.Series, name: str, where: str, declared: bool) -> Feature:
    held = holds(series)
    if held is None:
        raise UserError(
            f"{where}: column '{name}' is empty (all {len(series)} values missing); "
            f"allowed: a column with values: {_exclude_hint(name)}"
        )
    if held == "date" and not declared:
        raise UserError(
            f"{where}: column '{name}' holds dates; dates are not features: {_exclude_hint(name)}"
        )
    if held == TEXT and not declared:
        _text_kind(series, name, where)
    if declared or held in (TEXT, BOOL):
        return Feature(name, CATEGORICAL, TEXT if held == "date" else held)
    return Feature(name, NUMERIC, NUMBER)


def _chosen(columns: list[str], params: DataParams, where: str) -> list[str]:
    """The feature columns: data.features, else every column but label, id and data.exclude."""
    named = {"data.features": params.features or [], "data.exclude": params.exclude,
             "data.categorical": params.categorical}  # fmt: skip
    for key, names in named.items():
        unknown = [n for n in names if n not in columns]
        if unknown:
            raise UserError(f"{where}: {key} names column '{unknown[0]}', which is not in the "
                            f"table; columns are {columns}")  # fmt: skip
    reserved = (params.label_column, params.id_column)
    if params.features is not None:
        return [c for c in columns if c in params.features and c not in reserved]
    return [c for c in columns if c not in (*reserved, *params.exclude)]


def infer(base: pd.DataFrame, where: str, params: DataParams) -> Schema:
    """The schema of the first source file: which columns are features, of which kind."""
    if base.empty:
        raise UserError(f"{where}: has no rows; allowed: a table with a header and data rows")
    columns = [str(c) for c in base.columns]
    if params.label_column not in columns:
        raise UserError(f"{where}: no label column '{params.label_column}'; columns are {columns}")
    if params.id_column is not None and params.id_column not in columns:
        raise UserError(f"{where}: no id column '{params.id_column}'; columns are {columns}")
    chosen = _chosen(columns, params, where)
    if not chosen:
        raise UserError(f"{where}: no feature columns besides '{params.label_column}'")
    features = tuple(_kind(base[c], c, where, c in params.categorical) for c in chosen)
    return Schema(tuple(columns), params.label_column, params.id_column, features)


class LabelCoder:
    """Label values → 1 (data.positive_class) or 0 (the one other value), across files."""

    def __init__(self, column: str, positive: Any) -> None:
        self.column, self.positive = column, positive
        self.positive_text = category_text(positive)
        self.negative: Any = None
        self.seen_positive = False

    def _allowed(self) -> str:
        other = "one other value" if self.negative is None else repr(self.negative)
        return f"allowed: {self.positive!r} (data.positive_class) and {other}"

    def code(self, values: pd.Series, where: str) -> np.ndarray:
        # Text per distinct value, then per row by its code: no Python object per row.
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        texts = [category_text(u) for u in uniques] + [None]  # code -1 (missing) picks None
        missing = np.array([t is None for t in texts])[codes]
        if missing.any():
            raise UserError(f"{where}: label '{self.column}' is missing "
                            f"({_at(values, missing)}); every row needs a label; "
                            f"{self._allowed()}")  # fmt: skip
        positive = np.array([t == self.positive_text for t in texts])[codes]
        self.seen_positive |= bool(positive.any())
        # uniques come in order of first occurrence, so these do too
        for text in dict.fromkeys(t for t in texts[:-1] if t != self.positive_text):
            if self.negative is None:
                self.negative = _plain(uniques[texts.index(text)])
            elif text != category_text(self.negative):
                if not self.seen_positive:
                    raise UserError(
                        f"{where}: label '{self.column}' holds {self.negative!r} and {text!r} but "
                        f"not data.positive_class {self.positive!r}, which never occurs; "
                        "allowed: one of the label's two values"
                    )
                first = np.array([t == text for t in texts])[codes]
                raise UserError(f"{where}: label '{self.column}' has a third value "
                                f"({_at(values, first)}); {self._allowed()}")  # fmt: skip
        return positive.astype(np.int64)

    def classes(self, where: str) -> tuple[Any, Any]:
        if not self.seen_positive:
            seen = "no rows" if self.negative is None else f"only {self.negative!r}"
            raise UserError(
                f"{where}: data.positive_class {self.positive!r} never occurs in label "
                f"'{self.column}' (it holds {seen}); allowed: one of its two values"
            )
        if self.negative is None:
            raise UserError(
                f"{where}: label '{self.column}' has only class {self.positive!r}; "
                "both classes must be present"
            )
        return (self.negative, self.positive)


def numbers(series: pd.Series, name: str, where: str, by: str = "the base table") -> np.ndarray:
    """A numeric column as float64; text or inf in it is an error naming the first bad row."""
    held = holds(series)
    if held not in (None, NUMBER):
        raise UserError(
            f"{where}: column '{name}' is numeric in {by}, here it holds {held} "
            f"({_at(series, series.notna())}); allowed: numbers or empty cells"
        )
    # A float64 column as it is (to_numpy with na_value would copy it): its gaps are NaN.
    x = (series.to_numpy() if series.dtype == np.float64
         else series.to_numpy(dtype=np.float64, na_value=np.nan))  # fmt: skip
    if np.isinf(x).any():
        raise UserError(
            f"{where}: column '{name}' has {_at(series, np.isinf(x))}; "
            "allowed: finite numbers or empty cells"
        )
    gaps = np.isnan(x)
    # One NaN bit pattern, so that row hashes stay stable; no copy of a column without gaps.
    return np.where(gaps, np.nan, x) if gaps.any() else x


def texts(series: pd.Series, name: str, where: str, values: str = TEXT) -> pd.Series:
    """A categorical column as canonical text (missing stays missing)."""
    held = holds(series)
    if held not in (None, values) and not (values == NUMBER and held == TEXT):
        raise UserError(
            f"{where}: column '{name}' holds {values} categories in the base table, "
            f"here {held} ({_at(series, series.notna())}); allowed: {values} values "
            "or empty cells"
        )
    return pd.Series(category_texts(series), index=series.index, dtype="str")


def conform(df: pd.DataFrame, where: str, schema: Schema, labels: LabelCoder) -> pd.DataFrame:
    """One file's rows in the schema's columns and canonical types; label coded 0/1."""
    if df.empty:
        raise UserError(f"{where}: has no rows; allowed: a table with a header and data rows")
    columns = [str(c) for c in df.columns]
    added = [c for c in columns if c not in schema.columns]
    if added:
        raise UserError(
            f"{where}: column '{added[0]}' is not in the base table; allowed: the "
            f"base table's columns {list(schema.columns)}"
        )
    lost = [c for c in schema.columns if c not in columns]
    if lost:
        raise UserError(f"{where}: column '{lost[0]}' of the base table is missing")
    kinds = {f.name: f for f in schema.features}
    out: dict[str, Any] = {}
    for name in schema.columns:
        series = df[name].reset_index(drop=True)
        if name == schema.label:
            out[name] = labels.code(series, where)
        elif name in kinds and kinds[name].kind == NUMERIC:
            out[name] = numbers(series, name, where)
        elif name in kinds:
            out[name] = texts(series, name, where, kinds[name].values)
        else:  # the id and columns that are not features: kept as text, for the row's key
            out[name] = pd.Series(category_texts(series), dtype="str")
    table = pd.DataFrame(out, copy=False)  # one block per column, not a copy of them all
    if schema.id_column is not None:
        _check_ids(table[schema.id_column], schema.id_column, where)
    return table


def _check_ids(ids: pd.Series, column: str, where: str) -> None:
    if ids.isna().any():
        raise UserError(
            f"{where}: id column '{column}' is missing at row "
            f"{int(np.flatnonzero(ids.isna())[0]) + 1}; every row needs an id"
        )
    repeated = ids.duplicated()
    if repeated.any():
        raise UserError(
            f"{where}: id column '{column}' repeats value "
            f"{ids[repeated].iloc[0]!r}; ids must be unique"
        )


def check_ranges(parts: list[tuple[str, pd.DataFrame]], schema: Schema) -> None:
    """Numbers whose range over all files overflows float64 cannot be min-max scaled (max -
    min = inf). The line names the file and row of the outermost value, usually the culprit."""
    for f in schema.features:
        if f.kind != NUMERIC:
            continue
        lows = np.array([df[f.name].min() for _, df in parts])
        highs = np.array([df[f.name].max() for _, df in parts])
        low, high = np.nanmin(lows, initial=np.inf), np.nanmax(highs, initial=-np.inf)
        with np.errstate(over="ignore"):
            span = np.subtract(high, low)
        if not (np.isfinite(low) and np.isfinite(high)) or np.isfinite(span):
            continue
        value, ends = (high, highs) if abs(high) >= abs(low) else (low, lows)
        where, df = parts[int(np.flatnonzero(ends == value)[0])]
        raise UserError(
            f"{where}: column '{f.name}' spans {low:g} to {high:g} over all files "
            f"({_at(df[f.name], df[f.name] == value)} in this one), a range that overflows "
            "float64 (max - min = inf), so it cannot be scaled; allowed: a finite range; such "
            "values are often placeholders for 'unknown': leave those cells empty"
        )
