"""The train stage's work: fit the classifier, log the run and the serving model to MLflow.

A run is identified by its training key (params, data and code that train consumed): when
a complete run with the same key exists, the model is trained again and, if it is the
same model, that run is reused rather than logged a second time.
"""

import logging
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import torch
import torch._dynamo  # torch.optim's first step imports it (1/2 s): here, with the rest
from mlflow.entities import Metric

from epochline.core import numerics, paths
from epochline.core.files import json_digest, read_json, write_bytes, write_json
from epochline.core.params import Params
from epochline.core.runner import shielded
from epochline.data import preprocessing, tables
from epochline.data.preprocessing import Preprocessor
from epochline.data.schema import Schema
from epochline.evaluation import threshold
from epochline.serving import model_code
from epochline.tracking import provenance, store
from epochline.tracking.tags import (
    TAG_DESCRIPTION,
    TAG_MODEL_CODE,
    TAG_MODEL_DIGEST,
    TAG_MODEL_URI,
    TAG_THRESHOLD,
)
from epochline.training import distributed, model
from epochline.training.distributed import World
from epochline.training.progress import EpochProgress

log = logging.getLogger(__name__)

# The code whose change can change the model, part of the training key: every module of
# training/ (this one included) and, from other folders, the encoding the network is fed
# and the choice of the threshold baked into it.
_WEIGHTS_ELSEWHERE = (preprocessing, model_code, numerics, threshold)
SPLITS = paths.SPLIT_FILES
# Where the run happens, not what is trained: the key holds the resolved device and the
# number of processes instead.
_PLACEMENT = {"device", "nproc_per_node", "nnodes"}

# model.train with this process's rows bound: called with on_epoch, it trains.
Fit = Callable[..., model.Trained]


def training_code() -> dict[str, str]:
    """folder/file -> text of the code in the training key (see _WEIGHTS_ELSEWHERE)."""
    here = Path(__file__).parent
    files = [*sorted(here.glob("*.py")), *(Path(m.__file__ or "") for m in _WEIGHTS_ELSEWHERE)]
    return {f"{f.parent.name}/{f.name}": f.read_text() for f in files}


def _training_key(
    params: Params, config: dict[str, Any], data: str, device: torch.device, world: World
) -> str:
    return json_digest({
        "train": params.train.model_dump(exclude=_PLACEMENT), "config": config,
        "data": data, "code": json_digest(training_code()), "torch": provenance.release("torch"),
        "device": device.type, "processes": world.size,
    })  # fmt: skip


def _shard(
    params: Params, columns: list[str], world: World
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """This process's rows of train and val, read by row group (all of them for one
    process), and the train rows of all processes."""
    label = params.data.label_column

    def rows(path: Path, what: str) -> tuple[pd.DataFrame, int]:
        n_rows = tables.row_count(path, what)
        start, stop = tables.shard_bounds(n_rows, world.rank, world.size)
        return tables.read_rows(path, what, start, stop, [*columns, label]), n_rows

    train, n_train = rows(paths.TRAIN, "train table")
    val, _ = rows(paths.VAL, "validation table")
    return train, val, n_train


def _all_rows(path: Path, columns: list[str], params: Params) -> pd.DataFrame:
    n_rows = tables.row_count(path, "validation table")
    label = params.data.label_column
    return tables.read_rows(path, "validation table", 0, n_rows, [*columns, label])


def _with_progress(
    fit: Fit, epochs: int, log_epoch: Callable[[model.EpochMetrics], Any]
) -> model.Trained:
    with EpochProgress(epochs) as progress:

        def on_epoch(m: model.EpochMetrics) -> None:
            log_epoch(m)
            progress.update(m)

        return fit(on_epoch=on_epoch)


class _EpochLog:
    """Every epoch's metrics into the run, each with its step and time, written at
    most once a second (and whatever is left by flush): the UI shows training as it goes,
    and a small table's 60 epochs of ~5 ms are not 60 store transactions of ~8 ms."""

    INTERVAL_S = 1.0

    def __init__(self, run_id: str) -> None:
        self.run_id, self.client = run_id, store.client()
        self.pending: list[Metric] = []
        self.written = time.monotonic()

    def __call__(self, m: model.EpochMetrics) -> None:
        now = int(time.time() * 1000)
        self.pending += [Metric(k, v, now, m.epoch) for k, v in m.as_dict().items()]
        if time.monotonic() - self.written >= self.INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        batch, self.pending = self.pending, []  # sent once, even if a SIGTERM ends the call
        if batch:
            with shielded():  # a SIGTERM waits for the store's transaction to end
                self.client.log_batch(self.run_id, metrics=batch)
        self.written = time.monotonic()

    def flush_after_failure(self) -> None:
        """The curves up to the failed epoch, if the store takes them: the failure that
        ended training stays the one reported."""
        try:
            self.flush()
        except Exception as exc:  # the run's own error is on its way up
            log.warning("the last epochs' metrics were not logged: %s", exc)


def _new_run(
    experiment_id: str,
    params: Params,
    fit: Fit,
    keys: tuple[str, str],
    hardware: dict[str, str],
    trained: model.Trained | None = None,
    *,
    name: str | None = None,
    checkpoint: Path = paths.CHECKPOINT,
) -> tuple[store.TrainedModel, model.Trained]:
    """Log a run: params, datasets, every epoch (live while training, unless `trained` is
    given), the checkpoint (written to `checkpoint`) and the serving model. The model tags
    go last: they mark it whole. `hardware`: more tags; `name`: other than run_context's."""
    data_digest, train_key = keys
    context = store.run_context(params.flat(), data_digest, train_key)
    name, tags = name or context.name, context.tags | hardware
    with mlflow.start_run(experiment_id=experiment_id, run_name=name, tags=tags) as run:
        mlflow.log_params(params.flat())
        provenance.log_files(context.code_changes)
        store.log_datasets(SPLITS)
        epoch_log = _EpochLog(run.info.run_id)
        try:
            if trained is None:
                trained = _with_progress(fit, params.train.epochs, epoch_log)
            else:
                for m in trained.history:
                    epoch_log(m)
        except BaseException:
            epoch_log.flush_after_failure()
            raise
        epoch_log.flush()
        with shielded():  # the run summarised by its best epoch, the one whose weights it keeps
            mlflow.log_metrics(fit_summary(trained))
            mlflow.set_tag(TAG_THRESHOLD, trained.threshold.describe())
        data = _write_checkpoint(trained, checkpoint)
        config = trained.config
        # Raw rows, as a client sends them; the answers come from serving/model_code.py itself.
        test = tables.head(paths.TEST, "test table", 5)
        example = test[[f["name"] for f in config["features"]]]
        answers = model_code.answer(trained.net.state_dict(), config, example)
        model_digest, code_digest = model.identity(data), store.serving_code_digest()
        with shielded():
            model_uri = store.log_model(checkpoint, example, answers)
            mlflow.set_tags({TAG_MODEL_DIGEST: model_digest, TAG_MODEL_URI: model_uri,
                             TAG_MODEL_CODE: code_digest})  # fmt: skip
    recorded = store.TrainedModel(
        run.info.run_id, name, model_uri, model_digest, data_digest, tags[TAG_DESCRIPTION]
    )
    return recorded, trained


def fit_summary(trained: model.Trained) -> dict[str, float]:
    """What a run records of its fit besides the curves: the best epoch (whose weights are
    the model) and its validation metrics, how many epochs ran, the batch size used and
    the decision threshold baked into the model."""
    fitted = trained.fitted
    best = fitted.history[fitted.best_epoch - 1]
    return {
        "best_epoch": fitted.best_epoch, "epochs_trained": len(fitted.history),
        "best_val_loss": best.val_loss, "best_val_accuracy": best.val_accuracy,
        "batch_size": fitted.batch_size, "threshold": trained.threshold.value,
    }  # fmt: skip


def _write_checkpoint(trained: model.Trained, path: Path = paths.CHECKPOINT) -> dict[str, Any]:
    data = model.checkpoint(trained.net, trained.config)
    write_bytes(model.checkpoint_bytes(data), path)
    return data


def _train_and_record(
    params: Params, fit: Fit, keys: tuple[str, str], hardware: dict[str, str]
) -> tuple[store.TrainedModel, model.Trained]:
    """Rank 0: a new run, or the earlier run of the same key when it holds the same model."""
    experiment_id = store.connect(params.tracking)
    earlier = store.find_training_run(experiment_id, keys[1])
    if earlier is None:
        return _new_run(experiment_id, params, fit, keys, hardware)
    trained = _with_progress(fit, params.train.epochs, lambda _: None)
    digest_now = model.identity(_write_checkpoint(trained))
    if digest_now == earlier.model_digest:
        log.info("same model as run %s (%s): reusing that run", earlier.run_name, earlier.run_id)
        return earlier, trained
    # The same inputs gave other weights: record it, don't hide it.
    log.warning(
        "training key %s gave model %s, not %s as in run %s: logging a new run",
        keys[1], digest_now, earlier.model_digest, earlier.run_id,
    )  # fmt: skip
    return _new_run(experiment_id, params, fit, keys, hardware, trained)


def _inputs(params: Params) -> tuple[Preprocessor, Schema, dict[str, Any]]:
    """normalize's encoding, load's schema, and the checkpoint's config made of them."""
    preprocessor = Preprocessor.from_dict(read_json(paths.PREPROCESSOR, "preprocessing"))
    schema = Schema.from_dict(read_json(paths.SCHEMA, "schema"))
    return preprocessor, schema, model.checkpoint_config(params, preprocessor, schema)


def _fit(params: Params, world: World, device: torch.device) -> tuple[Fit, dict[str, Any]]:
    """model.train with this process's rows bound, and the checkpoint's config."""
    preprocessor, schema, config = _inputs(params)
    train, val, n_train = _shard(params, config["columns"], world)
    log.info("rank %d/%d on %s: train %d of %d rows, val %d rows", world.rank, world.size,
             device, len(train), n_train, len(val))  # fmt: skip
    # The threshold rule sees every validation row: the main process reads them all.
    several = world.size > 1 and world.is_main
    all_val = _all_rows(paths.VAL, config["columns"], params) if several else None
    fit = partial(model.train, params, preprocessor, schema, train, val, device=device,
                  world=world, train_total=n_train, threshold_rows=all_val)  # fmt: skip
    return fit, config


def _keys(
    params: Params, config: dict[str, Any], device: torch.device, world: World
) -> tuple[str, str]:
    """The data digest and the training key."""
    data_digest = tables.digest(SPLITS)
    return data_digest, _training_key(params, config, data_digest, device, world)


def seed_run(
    params: Params, experiment_id: str, tags: dict[str, str], name: str, folder: Path
) -> store.TrainedModel:
    """A new run of the model that the train stage trains in one process with these params
    (`epochline seeds`: one per seed), logged with `tags` and `name`; its checkpoint goes
    into `folder`, not models/ (train's output stays as train wrote it)."""
    device = model.resolve_device(params.train.device)
    fit, config = _fit(params, distributed.SINGLE, device)
    keys = _keys(params, config, device, distributed.SINGLE)
    hardware = provenance.hardware_tags(str(device)) | tags
    checkpoint = folder / paths.CHECKPOINT.name  # the artifact's file name, as train's
    recorded, _ = _new_run(experiment_id, params, fit, keys, hardware, name=name,
                           checkpoint=checkpoint)  # fmt: skip
    return recorded


def train_stage(params: Params) -> None:
    """The train stage, after its numerics are chosen (stages/train.py)."""
    world = distributed.current()
    if params.train.world_size > 1 and world.size == 1:
        return distributed.launch(params.train, "epochline.stages.train")  # here again, N times
    device = model.resolve_device(params.train.device, world.local_rank)
    with distributed.process_group(world, device):
        fit, config = _fit(params, world, device)
        if not world.is_main:
            fit()
            return
        keys = _keys(params, config, device, world)
        data_digest = keys[0]
        hardware = provenance.hardware_tags(str(device))
        recorded, trained = _train_and_record(params, fit, keys, hardware)
    history = trained.history
    write_json([{"epoch": m.epoch, **m.as_dict()} for m in history], paths.HISTORY)
    summary = fit_summary(trained)
    write_json(
        {"model_digest": recorded.model_digest, "data_digest": data_digest, "train_key": keys[1],
         "best_epoch": summary["best_epoch"], "epochs_trained": summary["epochs_trained"],
         "threshold": summary["threshold"], "batch_size": summary["batch_size"]},
        paths.MODEL_INFO,
    )  # fmt: skip
    fitted = trained.fitted
    stop = (f"stopped: no lower val_loss in {params.train.patience} epochs"
            if fitted.stopped_early else f"ran all {params.train.epochs}")  # fmt: skip
    log.info("run %s (%s): best epoch %d of %d (%s), val_loss %.4f, val_accuracy %.3f; "
             "batch size %d; threshold %s", recorded.run_name, recorded.run_id,
             fitted.best_epoch, len(history), stop, summary["best_val_loss"],
             summary["best_val_accuracy"], fitted.batch_size,
             trained.threshold.describe())  # fmt: skip
