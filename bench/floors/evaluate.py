"""The evaluate floor: score the test rows with the trained weights and write the reports.

Reads data/split/test.parquet with pyarrow and models/model.pt (epochline.training.model's
checkpoint), runs the network on the raw test features (its scaling is in its buffers),
computes the same metrics (epochline.evaluation.metrics) and writes predictions, metrics, ROC points
and the confusion rows under floor/. No MLflow: the stage's reloading of the logged model
and its logging are what the ratio shows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import torch

from epochline.core.params import load_params
from epochline.evaluation import metrics
from epochline.training import model

OUT = Path("floor")


def main() -> None:
    params = load_params()
    checkpoint = torch.load("models/model.pt", weights_only=True)
    net = model.from_checkpoint(checkpoint)
    config = checkpoint["config"]
    test = pq.read_table("data/split/test.parquet")
    names = [f["name"] for f in config["features"]]
    x = np.column_stack([test.column(n).to_numpy() for n in names])
    with torch.no_grad():
        prob = net(torch.from_numpy(x)).double().numpy()
    pred = (prob >= config["threshold"]).astype(np.int64)
    y = test.column(params.data.label_column).to_numpy()
    values = metrics.classification_metrics(y, prob, pred)
    matrix = metrics.confusion(y, pred)
    negative, positive = config["classes"]
    OUT.mkdir(exist_ok=True)
    classes = np.where(pred == 1, positive, negative)
    answers = pa.table({"probability": prob, "label": pred, "class": classes})
    pq.write_table(answers, OUT / "test_predictions.parquet")
    (OUT / "metrics.json").write_text(json.dumps(metrics.summary(values, matrix)))
    (OUT / "roc.json").write_text(json.dumps(metrics.roc_points(y, prob)))
    pacsv.write_csv(pa.table({"actual": y, "predicted": pred}), OUT / "confusion.csv")


if __name__ == "__main__":
    main()
