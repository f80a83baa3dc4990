"""Stage train: fit the classifier, log the run and the serving model to MLflow."""

import logging

import mlflow
import pandas as pd
import torch

from epochline import model, paths, tracking
from epochline.data import digest
from epochline.files import atomic_path, file_digest, read_json, read_parquet, write_json
from epochline.params import Params, load_params
from epochline.progress import EpochProgress
from epochline.runner import run_main
from epochline.scaling import MinMaxScaler

log = logging.getLogger(__name__)


def _config(params: Params, features: list[str]) -> dict[str, object]:
    return {
        "features": features,
        "hidden_size": params.train.hidden_size,
        "threshold": params.evaluate.threshold,
        "label": params.data.label_column,
    }


def _predict(net: model.Classifier, rows: pd.DataFrame, params: Params) -> pd.DataFrame:
    """What the served model returns, for the logged signature."""
    with torch.no_grad():
        probability = net(torch.tensor(rows.to_numpy(dtype="float64"))).double().numpy()
    label = (probability >= params.evaluate.threshold).astype("int64")
    return pd.DataFrame({"probability": probability, "label": label})


def _fit(
    net: model.Classifier, params: Params, tables: dict[str, pd.DataFrame], features: list[str]
) -> list[model.EpochMetrics]:
    """Train, logging each epoch's four metrics to the active run in one batched call."""
    label = params.data.label_column
    with EpochProgress(params.train.epochs) as progress:

        def log_epoch(m: model.EpochMetrics) -> None:
            mlflow.log_metrics(m.as_dict(), step=m.epoch)
            progress.update(m)

        return model.fit(
            net,
            model.to_tensors(tables["train"], features, label),
            model.to_tensors(tables["val"], features, label),
            params.train,
            on_epoch=log_epoch,
        )


def main() -> None:
    params = load_params()
    scaler = MinMaxScaler.from_dict(read_json(paths.SCALER, "scaler"))
    tables = {
        "train": read_parquet(paths.TRAIN, "train table"),
        "val": read_parquet(paths.VAL, "validation table"),
        "test": read_parquet(paths.TEST, "test table"),
    }
    features = list(scaler.columns)
    log.info(
        "train %s, val %s, %d features", tables["train"].shape, tables["val"].shape, len(features)
    )

    experiment_id = tracking.connect(params.tracking)
    name, tags = tracking.run_context(digest(*tables.values()))
    with mlflow.start_run(experiment_id=experiment_id, run_name=name, tags=tags) as run:
        mlflow.log_params(params.flat())
        split_files = {"train": paths.TRAIN, "val": paths.VAL, "test": paths.TEST}
        tracking.log_datasets(
            {k: (tables[k], split_files[k]) for k in tables}, params.data.label_column
        )
        net = model.build(len(features), params.train.hidden_size, params.train.seed)
        net.set_scaler(scaler)
        history = _fit(net, params, tables, features)

        with atomic_path(paths.CHECKPOINT) as tmp:
            torch.save(model.checkpoint(net, _config(params, features)), tmp)
        write_json([{"epoch": m.epoch, **m.as_dict()} for m in history], paths.HISTORY)
        # torch.save is byte-stable: same weights, same digest. Retrain matches on it.
        model_digest = file_digest(paths.CHECKPOINT)
        mlflow.set_tag(tracking.TAG_MODEL_DIGEST, model_digest)
        example = tables["test"][features].head(5)
        model_uri = tracking.log_model(paths.CHECKPOINT, example, _predict(net, example, params))
        info = {"run_id": run.info.run_id, "model_uri": model_uri, "model_digest": model_digest}
        write_json(info, paths.RUN_INFO)
    last = history[-1]
    log.info("run %s (%s): final val_accuracy %.3f", name, run.info.run_id, last.val_accuracy)


if __name__ == "__main__":
    run_main(main)
