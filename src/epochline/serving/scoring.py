"""Scoring raw rows with a logged model: the one way evaluate, retrain and predict do it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import mlflow
import pandas as pd
import torch
from mlflow.pyfunc import PyFuncModel
from mlflow.types import DataType

from epochline.serving import model_code
from epochline.tracking.store import serving_code_digest
from epochline.tracking.tags import TAG_MODEL_CODE, TAG_MODEL_DIGEST
from epochline.training.model import identity

log = logging.getLogger(__name__)

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


def as_logged(model_uri: str, tags: Mapping[str, str], checkpoint: Path, rows: pd.DataFrame
              ) -> pd.DataFrame:  # fmt: skip
    """The answers of the model logged at `model_uri` for raw rows, computed from its
    checkpoint on disk when the run's tags show that both its weights (the model digest)
    and its code (the sha256 of serving/model_code.py) are the ones logged: the function the
    logged model runs, on the same weights, without loading it (the load imports and checks
    its requirements again: a second per stage). Anything else loads the logged model."""
    data = torch.load(checkpoint, weights_only=True)
    same_code = tags.get(TAG_MODEL_CODE) == serving_code_digest()
    if same_code and tags.get(TAG_MODEL_DIGEST) == identity(data):
        config = data["config"]
        features = rows[[f["name"] for f in config["features"]]]
        answers: pd.DataFrame = model_code.answer(data["state_dict"], config, features)
        return answers
    log.info("%s: not the model or serving code logged at %s; scoring the logged model",
             checkpoint, model_uri)  # fmt: skip
    return LoggedModel(model_uri).score(rows)
