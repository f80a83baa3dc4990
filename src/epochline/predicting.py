"""`epochline predict`: score a file of raw rows with a logged or registered model."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PyFuncModel

from epochline import tracking
from epochline.data import read_table
from epochline.errors import UserError
from epochline.files import write_with
from epochline.params import load_params
from epochline.registry import CHAMPION
from epochline.schema import validate_features


def _load(uri: str, hint: str) -> PyFuncModel:
    try:
        return mlflow.pyfunc.load_model(uri)
    except MlflowException as exc:
        first = str(exc).splitlines()[0][:200]
        raise UserError(f"model {uri} cannot be loaded: {first}{hint}") from None


def predict_file(source: Path, output: Path, model_uri: str | None) -> tuple[int, str]:
    """Score raw rows with a model (default: the champion); write probability and label."""
    params = load_params()
    tracking.connect(params.tracking)
    uri = model_uri or f"models:/{params.tracking.registered_model_name}@{CHAMPION}"
    hint = "; run `epochline retrain` to make a champion" if model_uri is None else ""
    model = _load(uri, hint)
    features = model.metadata.get_input_schema().input_names()
    rows = validate_features(read_table(source), str(source), features)
    answers = pd.DataFrame(model.predict(rows[features]))  # extra columns: MLflow warns
    predictions = output_table(rows, answers, params.data.label_column, params.data.id_column)
    write_with(output, lambda tmp: predictions.to_csv(tmp, index=False))
    return len(predictions), uri


def output_table(
    rows: pd.DataFrame, answers: pd.DataFrame, label: str, id_column: str | None
) -> pd.DataFrame:
    """Each row's id, or `row`: its number in the input (1 = first data row, as in error
    messages); then `<label>_probability` and `<label>_predicted`, named after the label so
    that joined back onto the input they never clash with it."""
    if id_column is not None and id_column in rows.columns:
        key, keys = id_column, rows[id_column].to_numpy()
    else:
        key, keys = "row", np.arange(1, len(rows) + 1)
    return pd.DataFrame({
        key: keys,
        f"{label}_probability": answers["probability"].to_numpy(),
        f"{label}_predicted": answers["label"].to_numpy(),
    })  # fmt: skip
