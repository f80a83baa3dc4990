"""`epochline repro`: the whole pipeline through DVC, then what a person wants to know."""

from __future__ import annotations

from epochline import paths, report, tracking
from epochline.files import read_json
from epochline.params import load_params
from epochline.tools import dvc_repro


def repro_with_summary() -> str:
    params = load_params()
    remote = dvc_repro()
    experiment_id = tracking.connect(params.tracking)
    trained = tracking.pipeline_model(experiment_id)
    metrics = read_json(paths.METRICS, "test metrics")
    link = tracking.where_runs_are(experiment_id)
    return report.pipeline_summary(metrics, trained.run_name, trained.run_id, link, remote)
