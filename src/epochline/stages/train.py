"""Stage train: fit the classifier, log the run and the serving model to MLflow.

A run is identified by its training key (params, data and code that train consumed): when
a complete run with the same key exists, the model is trained again and, if it is the
same model, that run is reused rather than logged a second time.
"""

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import torch

from epochline import model, paths, preprocessing, serving, tracking
from epochline.data import digest
from epochline.files import json_digest, read_json, read_parquet, write_bytes, write_json
from epochline.params import Params, load_params
from epochline.preprocessing import Preprocessor
from epochline.progress import EpochProgress
from epochline.runner import run_main
from epochline.schema import Schema

log = logging.getLogger(__name__)

# The code whose change can change the weights: part of the training key.
_TRAINING_CODE = (model, preprocessing, serving)


def _config(params: Params, preprocessor: Preprocessor, schema: Schema) -> dict[str, Any]:
    """What the checkpoint carries besides weights: how raw rows become inputs, and answers."""
    return {
        "features": [dict(f) for f in preprocessor.features],
        "columns": preprocessor.columns,
        "hidden_size": params.train.hidden_size,
        "threshold": params.evaluate.threshold,
        "label": params.data.label_column,
        "classes": list(schema.classes),
    }


def _training_key(params: Params, config: dict[str, Any], data: str) -> str:
    files = [Path(m.__file__ or "") for m in _TRAINING_CODE] + [Path(__file__)]
    code = {f.name: f.read_text() for f in files}
    return json_digest({
        "train": params.train.model_dump(), "config": config,
        "data": data, "code": json_digest(code), "torch": torch.__version__,
    })  # fmt: skip


def _fit(
    net: model.Classifier,
    params: Params,
    tables: dict[str, pd.DataFrame],
    config: dict[str, Any],
    log_epoch: Callable[[model.EpochMetrics], Any],
) -> list[model.EpochMetrics]:
    label, inputs = params.data.label_column, config["columns"]
    train = model.to_tensors(tables["train"], inputs, label)
    net.silence_unused_inputs(train[0])
    with EpochProgress(params.train.epochs) as progress:

        def on_epoch(m: model.EpochMetrics) -> None:
            log_epoch(m)
            progress.update(m)

        return model.fit(
            net, train, model.to_tensors(tables["val"], inputs, label), params.train,
            on_epoch=on_epoch,
        )  # fmt: skip


def _log_epoch(m: model.EpochMetrics) -> None:
    mlflow.log_metrics(m.as_dict(), step=m.epoch)


def _new_run(
    experiment_id: str,
    params: Params,
    tables: dict[str, pd.DataFrame],
    net: model.Classifier,
    config: dict[str, Any],
    keys: tuple[str, str],
    history: list[model.EpochMetrics] | None = None,
) -> tuple[tracking.TrainedModel, list[model.EpochMetrics]]:
    """Log a run: params, datasets, every epoch (live while training, unless `history` is
    given), the checkpoint and the serving model. The model tags go last: they mark it whole."""
    data_digest, train_key = keys
    name, tags = tracking.run_context(params.flat(), data_digest, train_key)
    with mlflow.start_run(experiment_id=experiment_id, run_name=name, tags=tags) as run:
        mlflow.log_params(params.flat())
        split_files = {"train": paths.TRAIN, "val": paths.VAL, "test": paths.TEST}
        tracking.log_datasets(
            {k: (tables[k], split_files[k]) for k in tables}, params.data.label_column
        )
        if history is None:  # one batched call per epoch: the UI shows training as it goes
            history = _fit(net, params, tables, config, _log_epoch)
        else:
            for m in history:
                _log_epoch(m)
        data = _write_checkpoint(net, config)
        # Raw rows, as a client sends them; the answers come from serving.py itself.
        example = tables["test"][[f["name"] for f in config["features"]]].head(5)
        answers = serving.answer(net.state_dict(), config, example)
        model_uri = tracking.log_model(paths.CHECKPOINT, example, answers)
        model_digest = model.identity(data)
        mlflow.set_tags(
            {tracking.TAG_MODEL_DIGEST: model_digest, tracking.TAG_MODEL_URI: model_uri}
        )
    trained = tracking.TrainedModel(
        run.info.run_id, name, model_uri, model_digest, data_digest, tags[tracking.TAG_DESCRIPTION]
    )
    return trained, history


def _write_checkpoint(net: model.Classifier, config: dict[str, Any]) -> dict[str, Any]:
    data = model.checkpoint(net, config)
    write_bytes(model.checkpoint_bytes(data), paths.CHECKPOINT)
    return data


def main() -> None:
    params = load_params()
    preprocessor = Preprocessor.from_dict(read_json(paths.PREPROCESSOR, "preprocessing"))
    config = _config(params, preprocessor, Schema.from_dict(read_json(paths.SCHEMA, "schema")))
    tables = {
        "train": read_parquet(paths.TRAIN, "train table"),
        "val": read_parquet(paths.VAL, "validation table"),
        "test": read_parquet(paths.TEST, "test table"),
    }
    log.info("train %s, val %s, %d inputs", tables["train"].shape, tables["val"].shape,
             len(config["columns"]))  # fmt: skip
    experiment_id = tracking.connect(params.tracking)
    data_digest = digest(*tables.values())
    keys = (data_digest, _training_key(params, config, data_digest))
    net = model.build(len(config["columns"]), params.train.hidden_size, params.train.seed)
    net.set_scaler(preprocessor)

    earlier = tracking.find_training_run(experiment_id, keys[1])
    if earlier is None:
        trained, history = _new_run(experiment_id, params, tables, net, config, keys)
    else:
        history = _fit(net, params, tables, config, lambda _: None)
        digest_now = model.identity(_write_checkpoint(net, config))
        if digest_now == earlier.model_digest:
            log.info(
                "same model as run %s (%s): reusing that run", earlier.run_name, earlier.run_id
            )
            trained = earlier
        else:  # the same inputs gave other weights: record it, don't hide it
            log.warning(
                "training key %s gave model %s, not %s as in run %s: logging a new run",
                keys[1], digest_now, earlier.model_digest, earlier.run_id,
            )  # fmt: skip
            trained, history = _new_run(experiment_id, params, tables, net, config, keys, history)
    write_json([{"epoch": m.epoch, **m.as_dict()} for m in history], paths.HISTORY)
    write_json(
        {"model_digest": trained.model_digest, "data_digest": data_digest, "train_key": keys[1]},
        paths.MODEL_INFO,
    )
    last = history[-1]
    log.info("run %s (%s): final val_accuracy %.3f", trained.run_name, trained.run_id,
             last.val_accuracy)  # fmt: skip


if __name__ == "__main__":
    run_main(main)
