"""`epochline predict`: score a file of raw rows with a logged or registered model."""

from __future__ import annotations

from pathlib import Path

import mlflow
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
