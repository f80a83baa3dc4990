"""The model as MLflow serves it, logged as code (models-from-code): nothing is unpickled.

MLflow executes this file when it loads the model. The weights come from a checkpoint
artifact read with `torch.load(weights_only=True)`, which refuses arbitrary objects.
"""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.pyfunc import PythonModel

from epochline.model import from_checkpoint


class EpochlineModel(PythonModel):
    def load_context(self, context: Any) -> None:
        data = torch.load(context.artifacts["checkpoint"], weights_only=True)
        self.config = data["config"]
        self.model = from_checkpoint(data)

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        raw = model_input[self.config["features"]].to_numpy(dtype=np.float64)
        with torch.no_grad():
            probability = self.model(torch.tensor(raw)).double().numpy()
        label = (probability >= self.config["threshold"]).astype(np.int64)
        return pd.DataFrame({"probability": probability, "label": label})


mlflow.models.set_model(EpochlineModel())
