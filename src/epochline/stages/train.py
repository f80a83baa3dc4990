"""Stage train: fit the classifier, log the run and the serving model to MLflow."""

import logging

import mlflow
import pandas as pd
import torch

from epochline import model, paths, tracking
from epochline.data import digest
from epochline.errors import UserError
from epochline.files import atomic_path, read_json, read_parquet, write_json
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


def main() -> None:
    params = load_params()
    scaler = MinMaxScaler.from_dict(read_json(paths.SCALER, "scaler"))
    train_df = read_parquet(paths.TRAIN, "train table")
    val_df = read_parquet(paths.VAL, "validation table")
    test_df = read_parquet(paths.TEST, "test table")
    if train_df.empty or val_df.empty:
        raise UserError(
            f"{paths.SPLIT_DIR}: train has {len(train_df)} rows and val {len(val_df)}; "
            "both need rows: raise data.n_rows or split.val_size"
        )
    features, label = list(scaler.columns), params.data.label_column
    log.info("train %s, val %s, %d features", train_df.shape, val_df.shape, len(features))

    experiment_id = tracking.connect(params.tracking)
    name, tags = tracking.run_context(digest(train_df, val_df, test_df))
    with mlflow.start_run(experiment_id=experiment_id, run_name=name, tags=tags) as run:
        mlflow.log_params(params.flat())
        tracking.log_datasets(
            {"train": (train_df, paths.TRAIN), "test": (test_df, paths.TEST)}, label
        )
        net = model.build(len(features), params.train.hidden_size, params.train.seed)
        net.set_scaler(scaler)

        def log_epoch(m: model.EpochMetrics) -> None:
            mlflow.log_metrics(m.as_dict(), step=m.epoch)  # one batched call per epoch
            progress.update(m)

        with EpochProgress(params.train.epochs) as progress:
            history = model.fit(
                net,
                model.to_tensors(train_df, features, label),
                model.to_tensors(val_df, features, label),
                params.train,
                on_epoch=log_epoch,
            )
        with atomic_path(paths.CHECKPOINT) as tmp:
            torch.save(model.checkpoint(net, _config(params, features)), tmp)
        write_json([{"epoch": m.epoch, **m.as_dict()} for m in history], paths.HISTORY)

        example = test_df[features].head(5)
        model_uri = tracking.log_model(paths.CHECKPOINT, example, _predict(net, example, params))
        info = tracking.run_info(run.info.run_id, model_uri, experiment_id)
        write_json(info, paths.RUN_INFO)
    last = history[-1]
    log.info("run %s (%s): final val_accuracy %.3f", name, run.info.run_id, last.val_accuracy)


if __name__ == "__main__":
    run_main(main)
