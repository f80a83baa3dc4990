"""Scoring raw rows with a logged model: the one way evaluate, retrain and predict do it."""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.pyfunc import PyFuncModel


class LoggedModel:
    """A logged (models:/m-…) or registered model as it is served: raw rows in, answers out."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._model: PyFuncModel = mlflow.pyfunc.load_model(uri)

    @property
    def inputs(self) -> list[tuple[str, str]]:
        """The columns it takes: (name, MLflow type)."""
        return [(c.name, c.type.name) for c in self._model.metadata.get_input_schema().inputs]

    def score(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Its answers (probability, label, class) for raw rows; it picks the columns it takes."""
        answers: pd.DataFrame = self._model.predict(rows[[name for name, _ in self.inputs]])
        return answers
