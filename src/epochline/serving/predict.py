"""`epochline predict`: score a file of raw rows with a logged or registered model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from epochline.core.errors import UserError, first_line
from epochline.core.files import write_with
from epochline.core.params import load_params
from epochline.data.schema import NUMBER, numbers, texts
from epochline.data.sources import read_table
from epochline.serving.scoring import ANY, LoggedModel
from epochline.tracking import store
from epochline.tracking.registry import CHAMPION


def _load(uri: str, hint: str) -> LoggedModel:
    try:
        return LoggedModel(uri)
    except MlflowException as exc:
        raise UserError(f"model {uri} cannot be loaded: {first_line(exc)}{hint}") from None


def model_rows(df: pd.DataFrame, where: str, inputs: list[tuple[str, str]]) -> pd.DataFrame:
    """Rows to score in the model's input columns (name, MLflow type). A column of type
    ANY goes as it is: the model checks it. A model declaring `double` and `string` (logged
    before) gets numbers as float64, never text or inf, and categories as text."""
    if df.empty:
        raise UserError(f"{where}: has no rows to score")
    names = [name for name, _ in inputs]
    lost = [name for name in names if name not in df.columns]
    if lost:
        raise UserError(f"{where}: missing column '{lost[0]}'; the model takes {names}")
    columns = {
        # A category may come as a number (a declared code like a year): it is its text.
        name: df[name] if kind == ANY
        else texts(df[name], name, where, values=NUMBER) if kind == "string"
        else numbers(df[name], name, where, by="the model's input")
        for name, kind in inputs
    }  # fmt: skip
    return pd.DataFrame(columns, index=df.index)


def _score(model: LoggedModel, rows: pd.DataFrame, where: str) -> pd.DataFrame:
    """The model's answers; a value it refuses is the file's error, in the model's words."""
    try:
        return model.score(rows)
    except MlflowException as exc:
        if exc.error_code != "INVALID_PARAMETER_VALUE":
            raise
        raise UserError(f"{where}: {first_line(exc)}") from None


def predict_file(source: Path, output: Path, model_uri: str | None) -> tuple[int, str]:
    """Score raw rows with a model (default: the champion); write probability and class."""
    params = load_params()
    store.connect(params.tracking)
    uri = model_uri or f"models:/{params.tracking.registered_model_name}@{CHAMPION}"
    hint = "; run `epochline retrain` to make a champion" if model_uri is None else ""
    model = _load(uri, hint)
    table = read_table(source)
    answers = _score(model, model_rows(table, str(source), model.inputs), str(source))
    predictions = output_table(table, answers, params.data.label_column, params.data.id_column)
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
        # The class as the data names it; models logged before classes existed answer 0/1.
        f"{label}_predicted": answers.get("class", answers["label"]).to_numpy(),
    })  # fmt: skip
