"""`epochline predict`: score a file of raw rows with a logged or registered model."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from epochline import tracking
from epochline.data import read_table
from epochline.errors import UserError
from epochline.files import write_with
from epochline.params import load_params
from epochline.registry import CHAMPION


def predict_file(source: Path, output: Path, model_uri: str | None) -> tuple[int, str]:
    params = load_params()
    tracking.connect(params.tracking)
    uri = model_uri or f"models:/{params.tracking.registered_model_name}@{CHAMPION}"
    rows = read_table(source)
    if rows.empty:
        raise UserError(f"{source}: has no rows to score")
    try:
        model = mlflow.pyfunc.load_model(uri)
    except MlflowException as exc:
        first = str(exc).splitlines()[0][:200]
        hint = "; run `epochline retrain` to make a champion" if model_uri is None else ""
        raise UserError(f"model {uri} cannot be loaded: {first}{hint}") from None
    expected = model.metadata.get_input_schema().input_names()
    missing = [c for c in expected if c not in rows.columns]
    if missing:
        raise UserError(
            f"{source}: missing feature column(s) {', '.join(missing)}; "
            f"the model takes {', '.join(expected)}"
        )
    for column in expected:
        values = pd.to_numeric(rows[column], errors="coerce")
        bad = values.isna() | ~np.isfinite(values.fillna(0))
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise UserError(
                f"{source}: column '{column}' has {rows[column].iloc[row]!s} at row {row + 1}; "
                "allowed: finite numbers"
            )
    try:
        predictions = model.predict(rows)
    except MlflowException as exc:
        first = str(exc).splitlines()[0][:300]
        raise UserError(f"{source}: does not fit the model's input schema: {first}") from None
    id_column = params.data.id_column
    if id_column is not None and id_column in rows.columns:
        predictions.insert(0, id_column, rows[id_column].to_numpy())
    write_with(output, lambda tmp: predictions.to_csv(tmp, index=False))
    return len(predictions), uri
