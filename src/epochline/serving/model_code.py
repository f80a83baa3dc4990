"""The model as MLflow serves it, logged as code (models-from-code): nothing is unpickled.

MLflow executes this file when it loads the model. It imports no epochline module on
purpose: a process that already imported epochline (retrain, predict) would otherwise run
today's package code against an old model's weights. The weights and the fitted
preprocessing come from a checkpoint read with `torch.load(weights_only=True)`, which
refuses arbitrary objects.

epochline imports the functions below (category text, the design matrix, the forward
pass) so that training and serving share one implementation; only MLflow's execution of
the file registers the model (see the end).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import torch

MISSING, OTHER = "<missing>", "<other>"
# Scaled inputs are clipped here: a finite value far outside the training range (1e308)
# would otherwise overflow float32 and come out as NaN. Training rows are standardised.
LIMIT = 1e6
# Portable CPU numerics (epochline.core.numerics): torch's baseline kernels and MKL's compatible
# code path, the same bits on every x86-64 CPU. Read once, when torch loads.
PORTABLE_CPU = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}


class InputError(ValueError):
    """Rows the model cannot score; the message names the column, the value and what is allowed."""


def category_text(value: Any) -> str | None:
    """A category (or label) as text, whatever type a file or request gave it: 3, 3.0 and
    '3' are '3'; True is 'true'; None and NaN are missing (None)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating):
        if np.isnan(value):
            return None
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    return str(value)


def category_texts(values: pd.Series) -> np.ndarray:
    """category_text of every value, computed once per distinct value."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    texts = np.array([category_text(u) for u in uniques] + [None], dtype=object)
    return texts[codes]  # code -1 (missing) picks the trailing None


def design_columns(features: list[dict[str, Any]]) -> list[str]:
    """The model's input columns: a number (and its gap indicator), or one slot per category."""
    columns: list[str] = []
    for f in features:
        if f["kind"] == "numeric":
            columns += [f["name"]] + ([f"{f['name']}{MISSING}"] if f["indicator"] else [])
        else:
            columns += [f"{f['name']}={c}" for c in [*f["categories"], MISSING, OTHER]]
    return columns


def _numeric(f: dict[str, Any], column: pd.Series) -> list[np.ndarray]:
    """A number column in any type a client holds it: ints, uints, floats, bools, pandas'
    nullable types, or text, objects and categories that read as numbers."""
    if column.dtype == np.float64:  # as the data stages hold numbers: no text, no copy
        x = column.to_numpy()
        text = np.zeros(len(x), dtype=bool)
    else:
        x = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        text = column.notna().to_numpy() & np.isnan(x)
    if text.any() or np.isinf(x).any():
        at = int(np.flatnonzero(text | np.isinf(x))[0])
        raise InputError(
            f"column '{f['name']}' has {column.iloc[at]!r} at row {at + 1}; "
            "allowed: finite numbers or null"
        )
    missing = np.isnan(x)
    filled = np.where(missing, f["fill"], x) if missing.any() else x
    return [filled, missing.astype(np.float64)] if f["indicator"] else [filled]


def _one_hot(f: dict[str, Any], column: pd.Series) -> list[np.ndarray]:
    slots = {c: i for i, c in enumerate(f["categories"])}
    missing, other = len(slots), len(slots) + 1
    # Slot per distinct value, then per row by its code: no Python work per row.
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    texts = [category_text(u) for u in uniques]
    per_value = [missing if t is None else slots.get(t, other) for t in texts] + [missing]
    index = np.asarray(per_value, dtype=np.int64)[codes]  # code -1 (missing) picks the last
    return list(np.eye(len(slots) + 2, dtype=np.float64)[index].T)


def design_inputs(features: list[dict[str, Any]], rows: pd.DataFrame) -> list[np.ndarray]:
    """design's columns, one array each (for callers that never need the matrix)."""
    inputs: list[np.ndarray] = []
    for f in features:
        encode = _numeric if f["kind"] == "numeric" else _one_hot
        inputs += encode(f, rows[f["name"]])
    return inputs


def design(features: list[dict[str, Any]], rows: pd.DataFrame) -> np.ndarray:
    """Raw rows (strings and gaps included) → the numeric matrix the network takes, unscaled."""
    inputs = design_inputs(features, rows)
    return np.stack(inputs, axis=1) if inputs else np.zeros((len(rows), 0))


def probability(state: dict[str, torch.Tensor], matrix: np.ndarray) -> np.ndarray:
    """design matrix → standardisation (clipped) → Linear → ReLU → Linear → sigmoid."""
    import torch  # here, not at the top: the data stages use this module without torch
    from torch.nn import functional

    # One thread: MKL splits a product's sums by the thread count, and the answers must be
    # the same bits on any machine. The caller's count returns after.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            x = torch.tensor(matrix, dtype=torch.float64)
            scaled = ((x - state["x_center"]) / state["x_scale"]).clamp(-LIMIT, LIMIT).float()
            hidden = functional.linear(scaled, state["hidden.weight"], state["hidden.bias"])
            logits = functional.linear(torch.relu(hidden), state["out.weight"], state["out.bias"])
            return torch.sigmoid(logits.squeeze(-1)).double().numpy()
    finally:
        torch.set_num_threads(threads)


def answer(
    state: dict[str, torch.Tensor], config: dict[str, Any], rows: pd.DataFrame
) -> pd.DataFrame:
    """probability of the positive class, label (1 = positive), the class as the data names it."""
    prob = probability(state, design(config["features"], rows))
    if not np.isfinite(prob).all():  # never answer NaN: it is not even valid JSON
        raise InputError("the model computed a non-finite probability; check the input values")
    label = (prob >= config["threshold"]).astype(np.int64)
    negative, positive = config["classes"]
    return pd.DataFrame(
        {"probability": prob, "label": label, "class": np.where(label == 1, positive, negative)}
    )


# MLflow runs this file under a module name of its own when it loads the model; epochline
# imports it as epochline.serving.model_code for the functions alone (the data stages without torch
# or MLflow).
if __name__ != "epochline.serving.model_code":
    if "torch" not in sys.modules:  # a process that loaded torch already keeps its kernels
        os.environ.update(PORTABLE_CPU)
    import torch
    from mlflow.exceptions import MlflowException
    from mlflow.models import set_model
    from mlflow.pyfunc import PythonModel

    class EpochlineModel(PythonModel):
        def load_context(self, context: Any) -> None:
            checkpoint = torch.load(context.artifacts["checkpoint"], weights_only=True)
            self.state = checkpoint["state_dict"]
            self.config = checkpoint["config"]

        def predict(
            self, context: Any, model_input: pd.DataFrame, params: Any = None
        ) -> pd.DataFrame:
            try:
                return answer(self.state, self.config, model_input)
            except InputError as exc:  # the caller's mistake: its one line, and HTTP 400
                raise MlflowException.invalid_parameter_value(str(exc)) from None

    set_model(EpochlineModel())
