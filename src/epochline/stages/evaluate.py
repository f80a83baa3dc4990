"""Stage evaluate: score the test rows with the model as logged, beside the yardsticks fitted
on the same training rows; report to DVC and MLflow."""

import logging

import mlflow
import pandas as pd

from epochline.core import paths
from epochline.core.files import read_json, read_parquet, write_json, write_parquet, write_with
from epochline.core.params import load_params
from epochline.core.runner import run_main, shielded
from epochline.data.preprocessing import Preprocessor
from epochline.data.schema import Schema
from epochline.evaluation import baselines, card, metrics, plots, verdict
from epochline.serving import checkpoint
from epochline.tracking import provenance, store
from epochline.tracking.tags import TAG_BELOW_BASELINE, TAG_DESCRIPTION, TAG_NEVER_PREDICTS

log = logging.getLogger(__name__)


def main() -> None:
    params = load_params()
    test = read_parquet(paths.TEST, "test table")
    label = params.data.label_column
    trained = store.pipeline_model(store.connect(params.tracking))
    info = read_json(paths.MODEL_INFO, "train's model info")  # the threshold baked in
    schema = Schema.from_dict(read_json(paths.SCHEMA, "schema"))

    # Raw rows through the logged model: what is evaluated is exactly what would be served.
    logged = store.client().get_run(trained.run_id)
    predictions = checkpoint.answers_as_logged(
        trained.model_uri, logged.data.tags, paths.CHECKPOINT, test
    )
    y = test[label].to_numpy()
    prob, pred = predictions["probability"].to_numpy(), predictions["label"].to_numpy()
    values = metrics.classification_metrics(y, prob, pred)
    matrix = metrics.confusion(y, pred)
    roc = metrics.roc_points(y, prob)

    preprocessor = Preprocessor.from_dict(read_json(paths.PREPROCESSOR, "preprocessing"))
    inputs = baselines.pipeline_inputs(preprocessor, label, test)
    yardsticks = baselines.yardsticks(inputs, params.evaluate.threshold)
    found = verdict.judge(values, pred, yardsticks, schema.classes, params.retrain)

    # In metrics.summary's order, which is the order of the columns of `dvc exp show`.
    write_json({**metrics.summary(values, matrix), "threshold": info["threshold"]}, paths.METRICS,
               sort_keys=False)  # fmt: skip
    verdict_report = {
        "never_predicts": found.never_predicts, "below_baseline": found.below,
        "warnings": found.lines(),
        "baselines": baselines.report(yardsticks),
    }  # fmt: skip
    write_json(verdict_report, paths.VERDICT)
    write_json(roc, paths.ROC)
    confusion_rows = pd.DataFrame({"actual": y, "predicted": pred})
    write_with(paths.CONFUSION, lambda tmp: confusion_rows.to_csv(tmp, index=False))
    write_parquet(predictions, paths.PREDICTIONS)
    # The model card: nothing of the run in the file; its copy in the run adds the lineage.
    model_card = card.write_for_pipeline(
        params, info, card.Fitted(schema, preprocessor, params.data.max_categories),
        card.Tested(test, y, prob, pred, values, {y.name: y.values for y in yardsticks},
                    tuple(found.lines())),
    )  # fmt: skip

    # Resume train's run: one run holds the whole story; evaluate never opens a second.
    with mlflow.start_run(run_id=trained.run_id) as run, shielded():
        mlflow.set_tags(provenance.process_tags())  # RUNNING again, now this process's
        mlflow.log_metrics(
            {f"test_{k}": v for k, v in values.items()} | baselines.run_metrics(yardsticks)
        )
        flags = {TAG_NEVER_PREDICTS: found.never_predicts, TAG_BELOW_BASELINE: found.below}
        mlflow.set_tags({k: v for k, v in flags.items() if v is not None})
        # evaluate may run again on the same run (retrain.metric changed): no stale warning.
        stale = {k for k, v in flags.items() if v is None} & set(run.data.tags)
        for key in sorted(stale):
            mlflow.delete_tag(key)
        # The runs table shows the description: the test metrics without opening the run.
        mlflow.set_tag(TAG_DESCRIPTION, store.describe(trained, values))
        mlflow.log_figure(plots.confusion_figure(matrix), "plots/confusion_matrix.png")
        mlflow.log_figure(plots.roc_figure(roc, values["roc_auc"]), "plots/roc_curve.png")
        mlflow.log_artifact(str(paths.METRICS), "reports")
        mlflow.log_text(card.for_run(model_card, store.client(), run), card.ARTIFACT)
    log.info("test rows %d: %s", len(test), ", ".join(f"{k}={v:.4f}" for k, v in values.items()))
    for line in found.lines():
        log.warning("%s", line)


if __name__ == "__main__":
    run_main(main)
