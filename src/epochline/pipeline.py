"""`epochline repro`: the whole pipeline through DVC, then what a person wants to know."""

from __future__ import annotations

import logging

from epochline import paths, report, tracking
from epochline.errors import Failed
from epochline.files import read_json
from epochline.params import load_params
from epochline.tools import dvc_repro

log = logging.getLogger(__name__)


class RunIncomplete(Failed):
    """evaluate ran again, and the model's run still lacks what it logs."""


def evaluation_missing(trained: tracking.TrainedModel) -> list[str]:
    """What evaluate logs that the model's run lacks: test metrics, the description."""
    tested = read_json(paths.METRICS, "test metrics")
    run = tracking.client().get_run(trained.run_id)
    logged = run.data.metrics
    scores = {k.removeprefix("test_"): v for k, v in logged.items() if k.startswith("test_")}
    missing = [f"test_{k}" for k, v in tested.items() if _is_score(v) and k not in scores]
    headline = all(k in scores for k in tracking.HEADLINE_METRICS)
    description = run.data.tags.get(tracking.TAG_DESCRIPTION)
    if not headline or description != tracking.describe(trained, scores):
        missing.append("the description with its test metrics")
    return missing


def _is_score(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def trained_here(experiment_id: str) -> tracking.TrainedModel:
    """The pipeline's model as this store knows it, its run complete: trained again if the
    store lacks it, evaluated again if its run lacks evaluate's part.

    A fresh machine that pulled the outputs from the DVC remote but talks to another store
    has no run to show or register, and DVC sees nothing to do. Training is deterministic,
    so training again gives the same bytes (dvc.lock does not change) and logs the run in
    this store. A run can also lack only evaluate's part: train logged it here, but DVC
    found evaluate's inputs unchanged (their bytes are what an earlier store's run gave).
    """
    try:
        trained = tracking.pipeline_model(experiment_id)
    except tracking.ModelNotInStore as exc:
        log.warning("%s: training it again against this store", exc)
        dvc_repro("--force", "--downstream", "train")
        trained = tracking.pipeline_model(experiment_id)
    missing = evaluation_missing(trained)
    if missing:
        log.warning("run %s lacks %s: evaluating it again", trained.run_id, ", ".join(missing))
        dvc_repro("--force", "--single-item", "evaluate")
        missing = evaluation_missing(trained)
        if missing:
            raise RunIncomplete(
                f"run {trained.run_id} in {tracking.safe_uri(tracking.tracking_uri())} still "
                f"lacks {', '.join(missing)} after evaluate ran again; see evaluate's log above"
            )
    return trained


def repro_with_summary() -> str:
    params = load_params()
    remote = dvc_repro()
    experiment_id = tracking.connect(params.tracking)
    trained = trained_here(experiment_id)
    metrics = read_json(paths.METRICS, "test metrics")
    link = tracking.where_runs_are(experiment_id)
    return report.pipeline_summary(metrics, trained.run_name, trained.run_id, link, remote)
