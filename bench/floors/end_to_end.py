"""The end-to-end floor: all five stages' work in one process, logged to MLflow as the
stages log it.

In memory: generate (make_synthetic), mask the training rows (epochline.data.splitting), fill
and min-max scale with numpy, split, train with the raw loop (bench.floors.loop), score
the test rows with the served model's own function (serving.answer) and compute the same
metrics. MLflow gets what train and evaluate give it: params, provenance tags, datasets
(by digest and a sampled schema), every epoch's metrics (in one write), the served model
(tracking.log_model), test metrics, the two plots and metrics.json. Run in the project
directory; it uses its own fresh store (floor/mlflow.db), as the stages start from a
fresh one.

`--plain`: the same work without MLflow (the checkpoint, metrics.json and the two plots
written to floor/): the floor a plain in-memory script sets.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset
from mlflow.entities import Metric

from bench.floors.loop import raw_fit
from epochline.core.params import Params, load_params
from epochline.data.sources import make_synthetic
from epochline.data.splitting import TEST, TRAIN, VAL, assign, key_columns
from epochline.evaluation import metrics, plots
from epochline.serving import model_code
from epochline.tracking import provenance, store
from epochline.tracking.tags import TAG_MODEL_DIGEST, TAG_MODEL_URI
from epochline.training import model

OUT = Path("floor").resolve()


def _digest(*frames: pd.DataFrame) -> str:
    """A content hash, column by column: the bytes as they are, no copy of a whole table."""
    h = hashlib.sha256()
    for df in frames:
        for name in df.columns:
            h.update(name.encode())
            h.update(np.ascontiguousarray(df[name].to_numpy()).data)
    return h.hexdigest()[:16]


def _prepare(params: Params) -> tuple[dict[str, pd.DataFrame], list[dict[str, Any]], np.ndarray]:
    """Raw rows → train/val (standardised) and test (raw) tables, the feature specs, and
    the training rows' mean and standard deviation."""
    d = params.data
    raw = make_synthetic(d.n_rows, d.n_features, d.seed, d.label_column)
    part = assign(raw, key_columns(list(raw.columns), d.id_column), params.split)
    features = [c for c in raw.columns if c != d.label_column]
    train_rows = raw.loc[part == TRAIN, features].to_numpy()
    fills = np.nanmedian(train_rows, axis=0)
    center, deviation = np.nanmean(train_rows, axis=0), np.nanstd(train_rows, axis=0)
    x = np.where(np.isnan(raw[features].to_numpy()), fills, raw[features].to_numpy())
    scale = np.where(deviation > 0, deviation, 1.0)
    scaled = pd.DataFrame((x - center) / scale, columns=features)
    scaled[d.label_column] = raw[d.label_column]
    specs = [
        {"name": f, "kind": "numeric", "fill": float(v), "indicator": False}
        for f, v in zip(features, fills, strict=True)
    ]
    tables = {"train": scaled[part == TRAIN], "val": scaled[part == VAL], "test": raw[part == TEST]}
    return tables, specs, np.stack([center, scale])


def _tensors(df: pd.DataFrame, label: str) -> tuple[torch.Tensor, torch.Tensor]:
    x = df.drop(columns=label).to_numpy(dtype=np.float32)
    return torch.from_numpy(x), torch.from_numpy(df[label].to_numpy(dtype=np.float32))


def _log_datasets(tables: dict[str, pd.DataFrame]) -> None:
    datasets = [
        MetaDataset(  # type: ignore[abstract]  # profile is optional at run time
            resolve_dataset_source(str(Path("data/split", f"{name}.parquet").resolve())),
            name=name,
            digest=_digest(df),
            schema=mlflow.models.infer_signature(df.head(1000)).inputs,  # a sample's schema
        )
        for name, df in tables.items()
    ]
    contexts: list[str | None] = ["training", "validation", "testing"]
    mlflow.log_inputs(datasets=list(datasets), contexts=contexts, tags_list=[None] * 3)


def _evaluate(
    params: Params, state: dict[str, torch.Tensor], config: dict[str, Any], test: pd.DataFrame
) -> tuple[dict[str, float], dict[str, Figure]]:
    """The test rows scored by the served model's function: the metrics, metrics.json
    written, and the two plots by their artifact names."""
    answers = model_code.answer(state, config, test[[f["name"] for f in config["features"]]])
    y = test[params.data.label_column].to_numpy()
    prob, pred = answers["probability"].to_numpy(), answers["label"].to_numpy()
    values = metrics.classification_metrics(y, prob, pred)
    matrix, roc = metrics.confusion(y, pred), metrics.roc_points(y, prob)
    (OUT / "metrics.json").write_text(json.dumps(metrics.summary(values, matrix)))
    figures = {"confusion_matrix.png": plots.confusion_figure(matrix),
               "roc_curve.png": plots.roc_figure(roc, values["roc_auc"])}  # fmt: skip
    return values, figures


def _evaluate_and_log(
    params: Params, state: dict[str, torch.Tensor], config: dict[str, Any], test: pd.DataFrame
) -> None:
    values, figures = _evaluate(params, state, config, test)
    mlflow.log_metrics({f"test_{k}": v for k, v in values.items()})
    for name, figure in figures.items():
        mlflow.log_figure(figure, f"plots/{name}")
    mlflow.log_artifact(str(OUT / "metrics.json"), "reports")


def _model(params: Params) -> tuple[dict[str, pd.DataFrame], model.Classifier, dict[str, Any]]:
    """The tables, the untrained network (its scaling set) and its checkpoint config."""
    tables, specs, bounds = _prepare(params)
    label = params.data.label_column
    net = model.build(len(specs), params.train.hidden_size, params.train.seed)
    net.x_center.copy_(torch.from_numpy(bounds[0]))
    net.x_scale.copy_(torch.from_numpy(bounds[1]))
    config = {
        "features": specs, "columns": model_code.design_columns(specs),
        "hidden_size": params.train.hidden_size, "threshold": params.evaluate.threshold,
        "label": label, "classes": [0, 1],
    }  # fmt: skip
    return tables, net, config


def plain(params: Params, device: str) -> None:
    """All of it without MLflow: what the work costs in one process, in memory."""
    tables, net, config = _model(params)
    label = params.data.label_column
    train, val = _tensors(tables["train"], label), _tensors(tables["val"], label)
    raw_fit(net, train, val, params.train, model.resolve_device(device), on_epoch=lambda *_: None)
    net.cpu()
    OUT.mkdir(exist_ok=True)
    (OUT / "model.pt").write_bytes(model.checkpoint_bytes(model.checkpoint(net, config)))
    _, figures = _evaluate(params, net.state_dict(), config, tables["test"])
    for name, figure in figures.items():
        figure.savefig(OUT / name)


def run(params: Params, device: str) -> None:
    tables, net, config = _model(params)
    label, specs = params.data.label_column, config["features"]
    OUT.mkdir(exist_ok=True)
    mlflow.set_tracking_uri(f"sqlite:///{OUT / 'mlflow.db'}")
    experiment = mlflow.create_experiment(
        params.tracking.experiment_name, artifact_location=(OUT / "mlartifacts").as_uri()
    )
    data_digest = _digest(*tables.values())
    context = store.run_context(params.flat(), data_digest, data_digest)
    with mlflow.start_run(
        experiment_id=experiment, run_name=context.name, tags=context.tags
    ) as run:
        mlflow.log_params(params.flat())
        provenance.log_files(context.code_changes)
        _log_datasets(tables)
        epochs: list[Metric] = []  # all in one write at the end: the least a store can take
        raw_fit(
            net, _tensors(tables["train"], label), _tensors(tables["val"], label),
            params.train, model.resolve_device(device),
            on_epoch=lambda epoch, m: epochs.extend(
                Metric(k, v, int(time.time() * 1000), epoch) for k, v in m.items()
            ),
        )  # fmt: skip
        mlflow.MlflowClient().log_batch(run.info.run_id, metrics=epochs)
        net.cpu()
        checkpoint = model.checkpoint(net, config)
        (OUT / "model.pt").write_bytes(model.checkpoint_bytes(checkpoint))
        example = tables["test"][[f["name"] for f in specs]].head(5)
        state = net.state_dict()
        uri = store.log_model(OUT / "model.pt", example, model_code.answer(state, config, example))
        mlflow.set_tags({TAG_MODEL_DIGEST: model.identity(checkpoint), TAG_MODEL_URI: uri})
        _evaluate_and_log(params, state, config, tables["test"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--plain", action="store_true", help="the same work without MLflow")
    args = parser.parse_args()
    # torch's default threads, as the train stage has them
    (plain if args.plain else run)(load_params(), args.device)


if __name__ == "__main__":
    main()
