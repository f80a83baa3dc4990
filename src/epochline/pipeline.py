"""`epochline repro`: the whole pipeline through DVC, then what a person wants to know."""

from __future__ import annotations

from epochline import paths, report, tracking
from epochline.files import read_json
from epochline.params import load_params
from epochline.tools import dvc_repro


def repro_with_summary() -> str:
    params = load_params()
    remote = dvc_repro()
    trained = tracking.pipeline_model(tracking.connect(params.tracking))
    metrics = read_json(paths.METRICS, "test metrics")
    experiment = params.tracking.experiment_name
    return report.pipeline_summary(metrics, trained.run_name, trained.run_id, experiment, remote)
