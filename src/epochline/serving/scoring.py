"""Scoring raw rows with a logged model: the one way retrain, predict and compare do it
(evaluate too, unless it can prove its checkpoint is the logged model: checkpoint.py)."""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.pyfunc import PyFuncModel
from mlflow.types import DataType

ANY = "any"  # an input the model takes in any type and checks itself (models since ints)


class LoggedModel:
    """A logged (models:/m-…) or registered model as it is served: raw rows in, answers out."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._model: PyFuncModel = mlflow.pyfunc.load_model(uri)

    @property
    def inputs(self) -> list[tuple[str, str]]:
        """The columns it takes: (name, MLflow type: `double`, `string`, or ANY)."""
        return [
            (str(c.name), c.type.name if isinstance(c.type, DataType) else ANY)
            for c in self._model.metadata.get_input_schema().inputs
        ]

    def score(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Its answers (probability, label, class) for raw rows; it picks the columns it takes."""
        inputs = self.inputs
        columns = rows[[name for name, _ in inputs]]
        if all(kind == ANY for _, kind in inputs):
            # MLflow's check of an `any` column only copies each value through Python: 13 s
            # for a million rows of 7 columns that the model scores in 3. The model checks
            # the values itself, and pyfunc's predict answers the same (tests compare them).
            direct: pd.DataFrame = self._model.unwrap_python_model().predict(None, columns)
            return direct
        answers: pd.DataFrame = self._model.predict(columns)
        return answers
