"""The pipeline's model in this store with its run complete: what `epochline repro` shows and
a retrain registers, trained or evaluated again (through DVC) where the store lacks it."""

from __future__ import annotations

import logging

from epochline.core import paths
from epochline.core.errors import Failed
from epochline.core.files import read_json
from epochline.evaluation import metrics
from epochline.tools import dvc_repro
from epochline.tracking import store
from epochline.tracking.tags import TAG_DESCRIPTION

log = logging.getLogger(__name__)


class RunIncomplete(Failed):
    """evaluate ran again, and the model's run still lacks what it logs."""


def evaluation_missing(trained: store.TrainedModel) -> list[str]:
    """What evaluate logs that the model's run lacks: test metrics, the description."""
    tested = read_json(paths.METRICS, "test metrics")
    run = store.client().get_run(trained.run_id)
    logged = run.data.metrics
    scores = {k.removeprefix("test_"): v for k, v in logged.items() if k.startswith("test_")}
    # metrics.json's scores (not the threshold beside them, which train logs)
    missing = [f"test_{k}" for k in metrics.NAMES if k in tested and k not in scores]
    headline = all(k in scores for k in store.HEADLINE_METRICS)
    description = run.data.tags.get(TAG_DESCRIPTION)
    if not headline or description != store.describe(trained, scores):
        missing.append("the description with its test metrics")
    return missing


def trained_here(experiment_id: str) -> store.TrainedModel:
    """The pipeline's model as this store knows it, its run complete: trained again if the
    store lacks it, evaluated again if its run lacks evaluate's part.

    A fresh machine that pulled the outputs from the DVC remote but talks to another store
    has no run to show or register, and DVC sees nothing to do. Training is deterministic,
    so training again gives the same bytes (dvc.lock does not change) and logs the run in
    this store. A run can also lack only evaluate's part: train logged it here, but DVC
    found evaluate's inputs unchanged (their bytes are what an earlier store's run gave).
    """
    try:
        trained = store.pipeline_model(experiment_id)
    except store.ModelNotInStore as exc:
        log.warning("%s: training it again against this store", exc)
        dvc_repro("--force", "--downstream", "train")
        trained = store.pipeline_model(experiment_id)
    missing = evaluation_missing(trained)
    if missing:
        log.warning("run %s lacks %s: evaluating it again", trained.run_id, ", ".join(missing))
        dvc_repro("--force", "--single-item", "evaluate")
        missing = evaluation_missing(trained)
        if missing:
            raise RunIncomplete(
                f"run {trained.run_id} in {store.safe_uri(store.tracking_uri())} still "
                f"lacks {', '.join(missing)} after evaluate ran again; see evaluate's log above"
            )
    return trained
