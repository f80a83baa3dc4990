"""`epochline repro`: the whole pipeline through DVC, then what a person wants to know."""

from __future__ import annotations

from epochline.core import paths
from epochline.core.files import read_json
from epochline.core.params import load_params
from epochline.retrain import report
from epochline.retrain.complete import trained_here
from epochline.tools import dvc_repro
from epochline.tracking import store


def repro_with_summary() -> str:
    params = load_params()
    remote = dvc_repro()
    experiment_id = store.connect(params.tracking)
    trained = trained_here(experiment_id)
    metrics = read_json(paths.METRICS, "test metrics")
    warnings = read_json(paths.VERDICT, "evaluate's verdict")["warnings"]
    link = store.where_runs_are(experiment_id)
    return report.pipeline_summary(
        metrics, trained.run_name, trained.run_id, link, remote, warnings
    )
