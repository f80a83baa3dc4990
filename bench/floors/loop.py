"""The training floor: a raw loop over preloaded tensors, beside epochline.training.model.fit.

`python -m bench.floors.loop raw|fit --batch-size B ...` trains on synthetic rows (min-max
scaled, as normalize would) and reports samples per second (see `throughput`); with
`--project` it is the train stage's floor: the stage's epochs on its data/split tables.
Both kinds set the same torch threads and determinism, build the same model
(epochline.training.model.build) and optimizer (train.optimizer: AdamW by default). The
floor takes the optimizer's steps and nothing else; fit also sums each epoch's loss and
accuracy and scores the val rows.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch
from torch import nn

from epochline.core import numerics
from epochline.core.params import TrainParams, load_params
from epochline.data.sources import make_synthetic
from epochline.training import model

Tensors = tuple[torch.Tensor, torch.Tensor]


@torch.no_grad()
def _score(net: model.Classifier, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    logits = net.logits(x)
    loss = nn.functional.binary_cross_entropy_with_logits(logits, y).item()
    return loss, ((logits > 0).float() == y).float().mean().item()


def raw_fit(
    net: model.Classifier,
    train: Tensors,
    val: Tensors,
    settings: TrainParams,
    device: torch.device,
    on_epoch: Callable[[int, dict[str, float]], Any] | None = None,
) -> None:
    """Steps over tensors on `device`, sliced by a seeded permutation per epoch. With
    `on_epoch` (the end-to-end floor logs it), train and val are scored after each epoch;
    without, nothing but the steps."""
    model.deterministic()  # as fit does: the same kernels
    with numerics.one_thread(settings.numerics):  # as fit does: the same threads
        _raw_epochs(net, train, val, settings, device, on_epoch)


def _raw_epochs(
    net: model.Classifier,
    train: Tensors,
    val: Tensors,
    settings: TrainParams,
    device: torch.device,
    on_epoch: Callable[[int, dict[str, float]], Any] | None,
) -> None:
    net.to(device)
    x, y = (t.to(device) for t in train)
    val = (val[0].to(device), val[1].to(device))
    gen = torch.Generator(device=device).manual_seed(settings.seed)
    opt = model.optimizer(net, settings)  # train.optimizer, as fit has it
    for epoch in range(1, settings.epochs + 1):
        order = torch.randperm(len(x), generator=gen, device=device)
        for start in range(0, len(x), settings.batch_size):
            batch = order[start : start + settings.batch_size]
            loss = nn.functional.binary_cross_entropy_with_logits(net.logits(x[batch]), y[batch])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if on_epoch is not None:
            (tl, ta), (vl, va) = _score(net, x, y), _score(net, *val)
            on_epoch(epoch, dict(train_loss=tl, train_accuracy=ta, val_loss=vl, val_accuracy=va))


def synthetic_tensors(rows: int, n_features: int, seed: int) -> tuple[Tensors, Tensors]:
    """Min-max scaled synthetic rows, 90 % train and 10 % val (only train is timed per row)."""
    df = make_synthetic(rows, n_features, seed)
    x = df.drop(columns="label").to_numpy()
    x = (x - x.min(axis=0)) / np.where(np.ptp(x, axis=0) > 0, np.ptp(x, axis=0), 1.0)
    xt = torch.tensor(x, dtype=torch.float32)
    yt = torch.tensor(df["label"].to_numpy(), dtype=torch.float32)
    cut = rows * 9 // 10
    return (xt[:cut], yt[:cut]), (xt[cut:], yt[cut:])


def project_tensors(label: str) -> tuple[Tensors, Tensors]:
    """The stage's own train and val tables (every column but the label is an input)."""
    out = []
    for name in ("train", "val"):
        table = pq.read_table(f"data/split/{name}.parquet")
        x = np.column_stack([table.column(c).to_numpy() for c in table.column_names if c != label])
        y = table.column(label).to_numpy()
        out.append((torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)))
    return out[0], out[1]


def settings_for(base: TrainParams, batch_size: int, epochs: int) -> TrainParams:
    """The train params both kinds get (the device is passed to fit as an argument), with
    the numerics this process loaded torch with."""
    values = base.model_dump() | {
        "batch_size": batch_size, "epochs": epochs, "numerics": numerics.active()
    }  # fmt: skip
    return TrainParams(**values)


class Trainer:
    """One kind of loop (raw or fit) on fixed tensors; each call trains `epochs` more."""

    def __init__(self, kind: str, tensors: tuple[Tensors, Tensors], device: str) -> None:
        self.kind, (self.train, self.val) = kind, tensors
        self.device = model.resolve_device(device)
        self.net: model.Classifier | None = None

    def seconds(self, settings: TrainParams) -> float:
        if self.net is None:
            self.net = model.build(self.train[0].shape[1], settings.hidden_size, settings.seed)
        start = time.perf_counter()
        if self.kind == "raw":
            raw_fit(self.net, self.train, self.val, settings, self.device)
        else:
            model.fit(self.net, self.train, self.val, settings, device=self.device)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start


def throughput(trainer: Trainer, batch_size: int, window_s: float) -> dict[str, Any]:
    """Samples per second of the best of 3 timed windows of whole epochs, each about
    `window_s` long, after a warm-up epoch (torch imports its compiler stack at the first
    optimizer step) and a calibration epoch. The best, because a shared machine only ever
    slows a window down."""
    one = settings_for(TrainParams(), batch_size, 1)
    trainer.seconds(one)
    epochs = max(1, min(100, math.ceil(window_s / trainer.seconds(one))))
    windows = [trainer.seconds(settings_for(TrainParams(), batch_size, epochs)) for _ in range(3)]
    rows = len(trainer.train[0])
    return {"epochs_per_window": epochs, "window_s": windows, "train_rows": rows,
            "samples_per_s": rows * epochs / min(windows)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=["raw", "fit"])
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--rows", type=int, default=0, help="synthetic rows (not --project)")
    parser.add_argument("--window", type=float, default=1.0, help="seconds per timed window")
    parser.add_argument(
        "--project",
        action="store_true",
        help="the train floor: the project's epochs on data/split/, once",
    )
    parser.add_argument("--threads", type=int, default=0, help="0: torch's default")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--report", type=Path, required=True)
    args = parser.parse_args()  # fmt: skip
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    report: dict[str, Any]
    if args.project:
        params = load_params()
        trainer = Trainer(args.kind, project_tensors(params.data.label_column), args.device)
        report = {"fit_s": trainer.seconds(params.train)}  # the stage's numerics
    else:
        trainer = Trainer(args.kind, synthetic_tensors(args.rows, 10, 42), args.device)
        report = throughput(trainer, args.batch_size, args.window)
    mode = numerics.active()
    report |= {"kind": args.kind, "batch_size": args.batch_size, "numerics": mode,
               "threads": numerics.math_threads(mode), "device": str(trainer.device)}  # fmt: skip
    args.report.write_text(json.dumps(report))


if __name__ == "__main__":
    main()
