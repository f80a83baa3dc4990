"""`epochline repro`: the whole pipeline through DVC, then what a person wants to know."""

from __future__ import annotations

import logging

from epochline import paths, report, tracking
from epochline.files import read_json
from epochline.params import load_params
from epochline.tools import dvc_repro

log = logging.getLogger(__name__)


def trained_here(experiment_id: str) -> tracking.TrainedModel:
    """The pipeline's model as this store knows it; trained again if the store lacks it.

    A fresh machine that pulled the outputs from the DVC remote but talks to another store
    has no run to show or register. Training is deterministic, so training again gives
    the same bytes (dvc.lock does not change) and logs the run in this store.
    """
    try:
        return tracking.pipeline_model(experiment_id)
    except tracking.ModelNotInStore as exc:
        log.warning("%s: training it again against this store", exc)
        dvc_repro("--force", "--downstream", "train")
        return tracking.pipeline_model(experiment_id)


def repro_with_summary() -> str:
    params = load_params()
    remote = dvc_repro()
    experiment_id = tracking.connect(params.tracking)
    trained = trained_here(experiment_id)
    metrics = read_json(paths.METRICS, "test metrics")
    link = tracking.where_runs_are(experiment_id)
    return report.pipeline_summary(metrics, trained.run_name, trained.run_id, link, remote)
