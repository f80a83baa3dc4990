"""Evaluate's scoring: the logged model's answers, from the checkpoint on disk when the run
proves it is that model. Imported by the evaluate stage only: it loads torch (with the
portable numerics epochline sets), which retrain must not do before it picks its own."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import torch

from epochline.core.errors import UserError
from epochline.serving import model_code
from epochline.serving.scoring import LoggedModel
from epochline.tracking.store import serving_code_digest
from epochline.tracking.tags import TAG_MODEL_CODE, TAG_MODEL_DIGEST
from epochline.training.model import identity

log = logging.getLogger(__name__)


def _logged_checkpoint(tags: Mapping[str, str], checkpoint: Path) -> dict | None:
    """The checkpoint's content if the run's tags prove the logged model is it: the same
    weights and config (the model digest) and the same serving code (its sha256)."""
    if tags.get(TAG_MODEL_CODE) != serving_code_digest():
        return None
    try:
        data: dict = torch.load(checkpoint, weights_only=True)
    except (OSError, RuntimeError, pickle.UnpicklingError):
        return None  # missing or unreadable here; the logged model still loads
    return data if tags.get(TAG_MODEL_DIGEST) == identity(data) else None


def answers_as_logged(
    model_uri: str, tags: Mapping[str, str], checkpoint: Path, rows: pd.DataFrame
) -> pd.DataFrame:
    """The answers of the model logged at `model_uri` (its run's `tags`) for raw rows:
    computed by the serving code's own function on `checkpoint` when that is provably the
    logged model, which is what the logged model runs on the same weights, without loading
    it (a load imports and checks the model's requirements again: about a second). Any
    other case loads the logged model."""
    data = _logged_checkpoint(tags, checkpoint)
    if data is None:
        log.info("%s: not provably the model logged at %s; scoring the logged model",
                 checkpoint, model_uri)  # fmt: skip
        return LoggedModel(model_uri).score(rows)
    config = data["config"]
    try:
        answers: pd.DataFrame = model_code.answer(
            data["state_dict"], config, rows[[f["name"] for f in config["features"]]]
        )
    except model_code.InputError as exc:  # the logged model says the same, through MLflow
        raise UserError(f"test rows: {exc}") from None
    return answers
