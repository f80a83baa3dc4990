"""The model as MLflow serves it, logged as code (models-from-code): nothing is unpickled.

MLflow executes this file when it loads the model. It imports no epochline module on
purpose: a process that already imported epochline (retrain, predict) would otherwise run
today's package code against an old model's weights. The weights come from a checkpoint
artifact read with `torch.load(weights_only=True)`, which refuses arbitrary objects; the
forward pass below must stay the same as `epochline.model.Classifier.forward` (a test
compares them).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel
from torch.nn import functional


def probability(state: dict[str, torch.Tensor], raw: np.ndarray) -> np.ndarray:
    """raw rows → min-max scaling → Linear → ReLU → Linear → sigmoid."""
    x = torch.tensor(raw, dtype=torch.float64)
    normalized = ((x - state["x_min"]) / state["x_span"]).float()
    hidden = torch.relu(functional.linear(normalized, state["hidden.weight"], state["hidden.bias"]))
    logits = functional.linear(hidden, state["out.weight"], state["out.bias"]).squeeze(-1)
    return torch.sigmoid(logits).double().numpy()


class EpochlineModel(PythonModel):
    def load_context(self, context: Any) -> None:
        checkpoint = torch.load(context.artifacts["checkpoint"], weights_only=True)
        self.state = checkpoint["state_dict"]
        self.config = checkpoint["config"]

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        raw = model_input[self.config["features"]].to_numpy(dtype=np.float64)
        with torch.no_grad():
            prob = probability(self.state, raw)
        label = (prob >= self.config["threshold"]).astype(np.int64)
        return pd.DataFrame({"probability": prob, "label": label})


set_model(EpochlineModel())
