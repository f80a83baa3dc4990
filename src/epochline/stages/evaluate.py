"""Stage evaluate: score the test rows with the model as logged; report to DVC and MLflow."""

import logging

import mlflow
import pandas as pd

from epochline.core import paths
from epochline.core.files import read_parquet, write_json, write_parquet, write_with
from epochline.core.params import load_params
from epochline.core.runner import run_main, shielded
from epochline.evaluation import metrics, plots
from epochline.serving.scoring import LoggedModel
from epochline.tracking import provenance, store
from epochline.tracking.tags import TAG_DESCRIPTION

log = logging.getLogger(__name__)


def main() -> None:
    params = load_params()
    test = read_parquet(paths.TEST, "test table")
    label = params.data.label_column
    trained = store.pipeline_model(store.connect(params.tracking))

    # Raw rows through the logged model: what is evaluated is exactly what would be served.
    predictions = LoggedModel(trained.model_uri).score(test)
    y = test[label].to_numpy()
    prob, pred = predictions["probability"].to_numpy(), predictions["label"].to_numpy()
    values = metrics.classification_metrics(y, prob, pred)
    matrix = metrics.confusion(y, pred)
    roc = metrics.roc_points(y, prob)

    write_json(metrics.summary(values, matrix), paths.METRICS)
    write_json(roc, paths.ROC)
    confusion_rows = pd.DataFrame({"actual": y, "predicted": pred})
    write_with(paths.CONFUSION, lambda tmp: confusion_rows.to_csv(tmp, index=False))
    write_parquet(predictions, paths.PREDICTIONS)

    # Resume train's run: one run holds the whole story; evaluate never opens a second.
    with mlflow.start_run(run_id=trained.run_id), shielded():
        mlflow.set_tags(provenance.process_tags())  # RUNNING again, now this process's
        mlflow.log_metrics({f"test_{k}": v for k, v in values.items()})
        # The runs table shows the description: the test metrics without opening the run.
        mlflow.set_tag(TAG_DESCRIPTION, store.describe(trained, values))
        mlflow.log_figure(plots.confusion_figure(matrix), "plots/confusion_matrix.png")
        mlflow.log_figure(plots.roc_figure(roc, values["roc_auc"]), "plots/roc_curve.png")
        mlflow.log_artifact(str(paths.METRICS), "reports")
    log.info("test rows %d: %s", len(test), ", ".join(f"{k}={v:.4f}" for k, v in values.items()))


if __name__ == "__main__":
    run_main(main)
