"""Data checks on raw tables, with pandera; failures become one actionable line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from epochline.errors import UserError


def _finite(series: pd.Series) -> pd.Series:
    return pd.Series(np.isfinite(series.to_numpy(dtype=float)), index=series.index)


def _feature_columns(features: list[str]) -> dict[str, pa.Column]:
    return {
        name: pa.Column(float, pa.Check(_finite, name="finite"), nullable=False, coerce=True)
        for name in features
    }


def table_schema(features: list[str], label: str, id_column: str | None) -> pa.DataFrameSchema:
    columns = _feature_columns(features)
    # No coercion for the label: astype(int) would silently turn 0.7 into 0.
    columns[label] = pa.Column(checks=pa.Check.isin([0, 1]), nullable=False)
    if id_column is not None:
        # Ids compare as text, so an int id in one file and "17" in another are one id.
        columns[id_column] = pa.Column(str, nullable=False, unique=True, coerce=True)
    return pa.DataFrameSchema(columns, strict=True)


def _row(index: object) -> str:
    return f"row {int(index) + 1}" if isinstance(index, int | np.integer) else "rows"


def _explain(failure: pd.Series, label: str) -> str:
    column, check, case = failure["column"], str(failure["check"]), failure["failure_case"]
    case = case.item() if isinstance(case, np.generic) else case
    at = _row(failure["index"]) if pd.notna(failure["index"]) else ""
    if check == "column_in_schema":
        return f"unexpected column '{case}'; allowed: the feature columns and '{label}'"
    if check == "column_in_dataframe":
        return f"missing column '{case}'"
    if check.startswith("dtype(") or check.startswith("coerce_dtype"):
        return f"column '{column}' is not numeric (value {case!r} at {at}); allowed: numbers"
    if check == "not_nullable":
        return f"column '{column}' has a missing value (NaN) at {at}; allowed: finite numbers"
    if check == "finite":
        return f"column '{column}' has {case} at {at}; allowed: finite numbers"
    if check.startswith("isin"):
        return f"label column '{column}' has value {case!r} at {at}; allowed: 0 or 1"
    if check == "field_uniqueness":
        return f"id column '{column}' repeats value {case!r}; ids must be unique"
    return f"column '{column}' fails {check} with {case!r} at {at}"


_ORDER = ("column_in_dataframe", "column_in_schema", "coerce_dtype", "dtype", "not_nullable")


def _first(cases: pd.DataFrame) -> pd.Series:
    def rank(check: str) -> int:
        return next((i for i, p in enumerate(_ORDER) if check.startswith(p)), len(_ORDER))

    ranks = cases["check"].astype(str).map(rank)
    return cases.loc[ranks.sort_values(kind="stable").index[0]]


def validate_rows(
    df: pd.DataFrame, where: str, features: list[str], label: str, id_column: str | None
) -> pd.DataFrame:
    """Check one file's rows; return them with float64 features and an int64 label."""
    if df.empty:
        raise UserError(f"{where}: has no rows; allowed: a table with a header and data rows")
    if label not in df.columns:
        raise UserError(f"{where}: no label column '{label}'; columns are {list(df.columns)}")
    try:
        checked = table_schema(features, label, id_column).validate(df, lazy=True)
    except SchemaErrors as exc:
        raise UserError(f"{where}: {_explain(_first(exc.failure_cases), label)}") from None
    return checked.astype({label: "int64"})


def validate_features(df: pd.DataFrame, where: str, features: list[str]) -> pd.DataFrame:
    """Rows to score: the feature columns must be there and finite; others pass through."""
    if df.empty:
        raise UserError(f"{where}: has no rows to score")
    try:
        return pa.DataFrameSchema(_feature_columns(features)).validate(df, lazy=True)
    except SchemaErrors as exc:
        raise UserError(f"{where}: {_explain(_first(exc.failure_cases), '')}") from None


def validate_table(df: pd.DataFrame, where: str, label: str, min_rows: int) -> None:
    """Checks on the whole assembled table, beyond those each file passed."""
    if len(df) < min_rows:
        raise UserError(f"{where}: {len(df)} rows, fewer than data.min_rows = {min_rows}")
    classes = sorted(df[label].unique().tolist())
    if classes != [0, 1]:
        raise UserError(
            f"{where}: label '{label}' has only class {classes}; both 0 and 1 must be present"
        )
