"""The classifier and its training: tables and params in, trained model and history out.

`train` is the train stage's core, from network inputs (normalize's rows) to a model and
what rebuilds it; `fit` is its loop over tensors, training a model in place. No file or
MLflow I/O here.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from epochline.core import numerics
from epochline.core.errors import UserError
from epochline.core.params import AUTO, Params, TrainParams
from epochline.data.preprocessing import Preprocessor
from epochline.data.schema import Schema
from epochline.evaluation import threshold
from epochline.serving.model_code import LIMIT
from epochline.training.distributed import SINGLE, World, all_sum, pad

# train.batch_size: auto (see auto_batch_size), chosen by measurement (README: Your own data).
AUTO_STEPS, AUTO_BATCH_MIN, AUTO_BATCH_MAX = 64, 32, 1024


class Classifier(nn.Module):
    """inputs → standardisation (clipped) → Linear → ReLU → Linear → sigmoid.

    The scaling lives in buffers, so the saved weights take unscaled inputs (serving.design
    makes them from raw rows): what is trained on normalised data is served on raw data.
    """

    x_center: torch.Tensor
    x_scale: torch.Tensor

    def __init__(self, n_features: int, hidden_size: int) -> None:
        super().__init__()
        self.register_buffer("x_center", torch.zeros(n_features, dtype=torch.float64))
        self.register_buffer("x_scale", torch.ones(n_features, dtype=torch.float64))
        self.hidden = nn.Linear(n_features, hidden_size)
        self.out = nn.Linear(hidden_size, 1)

    def logits(self, normalized: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(normalized))).squeeze(-1)

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        """Probability of class 1 for unscaled inputs."""
        normalized = ((raw.double() - self.x_center) / self.x_scale).clamp(-LIMIT, LIMIT).float()
        return torch.sigmoid(self.logits(normalized))

    def set_scaler(self, preprocessor: Preprocessor) -> None:
        self.x_center.copy_(torch.tensor(preprocessor.center, dtype=torch.float64))
        self.x_scale.copy_(torch.from_numpy(preprocessor.scale))

    @torch.no_grad()
    def silence_unused_inputs(self, used: torch.Tensor) -> None:
        """Zero the weights of inputs that are 0 in every training row (a category slot no
        training row fills): they get no gradient, so they stay 0, and a category first seen
        when serving adds nothing instead of a random initial weight."""
        self.hidden.weight[:, ~used] = 0.0


def build(n_features: int, hidden_size: int, seed: int) -> Classifier:
    """Initialise from an explicit generator: the same seed gives the same weights."""
    model = Classifier(n_features, hidden_size)
    gen = torch.Generator().manual_seed(seed)
    for layer in (model.hidden, model.out):
        # nn.Linear's own default init, drawn from our generator instead of the global one.
        nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=gen)
        bound = 1 / math.sqrt(layer.in_features)
        nn.init.uniform_(layer.bias, -bound, bound, generator=gen)
    return model


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float

    def as_dict(self) -> dict[str, float]:
        return {k: v for k, v in self.__dict__.items() if k != "epoch"}


def to_tensors(
    df: pd.DataFrame, features: list[str], label: str
) -> tuple[torch.Tensor, torch.Tensor]:
    # A column at a time into the row-major matrix: no copy of the selected columns on the
    # way (the caller still holds the table while training).
    x = np.empty((len(df), len(features)), dtype=np.float32)
    for j, name in enumerate(features):
        x[:, j] = df[name].to_numpy(dtype=np.float32)
    y = torch.from_numpy(df[label].to_numpy(dtype=np.float32))
    return torch.from_numpy(x), y


def inputs_used(preprocessor: Preprocessor) -> torch.Tensor:
    """Inputs that vary over the training rows; the others are 0 in every scaled row."""
    return torch.from_numpy(preprocessor.varies)


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """train.device → a torch device; auto picks a GPU (CUDA, then Apple's MPS) if there is one."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if _mps() else "cpu"
    if (name == "cuda" and not torch.cuda.is_available()) or (name == "mps" and not _mps()):
        raise UserError(
            f"train.device = '{name}', but PyTorch {torch.__version__} sees no such device here; "
            "allowed: auto (a GPU when there is one) or cpu"
        )
    if name == "cuda":
        # Deterministic cuBLAS needs this set before its first use (PyTorch's reproducibility
        # notes); deterministic mode (see fit) then refuses any op without a deterministic form.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device(name)


def _mps() -> bool:
    return bool(torch.backends.mps.is_available())


class _Logits(nn.Module):
    """The training forward (inputs already scaled → logits), as one module for DDP to wrap:
    DistributedDataParallel synchronises gradients only for calls through its forward."""

    def __init__(self, net: Classifier) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.logits(x)


def _trainer(
    model: Classifier, device: torch.device, world: World
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The training forward: the model's own in one process (no module call around it, a
    few µs of a ~200 µs step at batch 64); wrapped for DistributedDataParallel in several."""
    if world.size == 1:
        return model.logits
    step = _Logits(model)
    ids = [device.index] if device.type == "cuda" else None
    with warnings.catch_warnings():
        # The scaling buffers never change: no broadcast before every step. (torch 2.13
        # deprecates the flag, but its successor still syncs at every forward.)
        warnings.filterwarnings("ignore", "`broadcast_buffers` is deprecated")
        return nn.parallel.DistributedDataParallel(step, device_ids=ids, broadcast_buffers=False)


@torch.no_grad()
def _score_sums(
    model: Classifier, x: torch.Tensor, y: torch.Tensor, pos_weight: torch.Tensor | None
) -> torch.Tensor:
    """Summed loss, correct answers and rows: sums, so that shards add up exactly."""
    logits = model.logits(x)
    loss = nn.functional.binary_cross_entropy_with_logits(
        logits, y, reduction="sum", pos_weight=pos_weight
    )
    correct = ((logits > 0) == (y > 0.5)).sum()
    return _sums(loss, correct, len(y))


def _epoch(
    trainer: Callable[[torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    order: torch.Tensor,
    batch_size: int,
    pos_weight: torch.Tensor | None,
) -> torch.Tensor:
    """One pass in `order`; returns the summed loss and correct answers of its batches as
    they were trained on (the running metrics every framework reports)."""
    x, y, positive = data
    loss_sum = torch.zeros((), dtype=torch.float64, device=x.device)
    # Each step adds its loss and keeps its logits; the answers are counted once per epoch:
    # two small ops a step, where a step at batch 64 is itself a few dozen. (The loss
    # summed again from the kept logits instead costs more at large batches than it saves.)
    logits_seen = torch.empty(len(x), device=x.device)
    for start in range(0, len(x), batch_size):
        batch = order[start : start + batch_size]
        logits = trainer(x[batch])
        loss = nn.functional.binary_cross_entropy_with_logits(
            logits, y[batch], pos_weight=pos_weight
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        # Detached: no graph, and no .item() (a GPU would wait for the host on every step).
        loss_sum.add_(loss.detach(), alpha=len(batch))
        logits_seen[start : start + len(batch)] = logits.detach()
    correct = ((logits_seen > 0) == positive[order]).sum()
    return _sums(loss_sum, correct, len(x))


def _sums(loss: torch.Tensor, correct: torch.Tensor, rows: int) -> torch.Tensor:
    return torch.stack([loss.double(), correct.double(), loss.new_tensor(float(rows)).double()])


@dataclass(frozen=True)
class Fitted:
    """What a fit did: every epoch's metrics, and the epoch whose weights the model holds."""

    history: list[EpochMetrics]
    best_epoch: int
    batch_size: int
    stopped_early: bool


def auto_batch_size(n_train: int, world_size: int = 1) -> int:
    """train.batch_size: auto. About AUTO_STEPS steps per epoch: a power of two between
    AUTO_BATCH_MIN and AUTO_BATCH_MAX (a few hundred rows get batches of 32, a million
    rows 1024), rounded up to a multiple of the processes."""
    target = max(n_train // AUTO_STEPS, 1)
    size = min(max(1 << (target.bit_length() - 1), AUTO_BATCH_MIN), AUTO_BATCH_MAX)
    return math.ceil(size / world_size) * world_size


def batch_size(params: TrainParams, n_train: int) -> int:
    if params.batch_size == AUTO:
        return auto_batch_size(n_train, params.world_size)
    return int(params.batch_size)


def optimizer(model: Classifier, params: TrainParams) -> torch.optim.Optimizer:
    """train.optimizer for `model`'s parameters."""
    if params.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=params.lr, momentum=params.momentum,
            weight_decay=params.weight_decay,
        )  # fmt: skip
    return torch.optim.AdamW(model.parameters(), lr=params.lr, weight_decay=params.weight_decay)


def fit(
    model: Classifier,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    params: TrainParams,
    on_epoch: Callable[[EpochMetrics], Any] = lambda _: None,
    device: torch.device | None = None,
    world: World = SINGLE,
    train_total: int | None = None,
    own_rows: int | None = None,
) -> Fitted:
    """Train over tensors that stay on `device` for the whole fit, sliced by a seeded
    permutation per epoch, for at most `params.epochs` epochs: after `params.patience`
    epochs without a lower validation loss it stops, and the model holds the weights of
    the epoch with the lowest one. With several processes (`world`), each passes its own
    shard (train shards of equal length) and takes its share of every batch: the same
    steps as one process takes. Gradients are averaged and epoch metrics summed over all,
    so every process stops at the same epoch. `own_rows`: this shard's rows before padding
    (all of `train` by default). The model ends on the CPU."""
    deterministic()
    device = device or torch.device("cpu")
    if device.type == "cpu":
        numerics.check(params.numerics)
    with numerics.one_thread(params.numerics):
        counts = (len(train[0]) if train_total is None else train_total, own_rows)
        return _fit(model, train, val, params, on_epoch, device, world, counts)


def deterministic() -> None:
    """torch's deterministic algorithms, and an error for any op that has none.

    `torch.use_deterministic_algorithms(True)` does the same and also sets the compiler's
    flag, importing torch._inductor for it (half a second of every train stage) for a
    compiler this package never uses. The debug mode "error" is the same switch without it.
    """
    torch.set_deterministic_debug_mode("error")


def _positive_weight(
    y: torch.Tensor, params: TrainParams, world: World, n_train: int, own_rows: int | None
) -> torch.Tensor | None:
    """class_weight balanced: positives weigh negatives/positives (over all processes' rows,
    padding aside), so both classes add up to the same total weight in the loss."""
    if params.class_weight == "none":
        return None
    own = y if own_rows is None else y[:own_rows]  # this shard's own rows, not its padding
    positives = all_sum(own.double().sum().reshape(1), world).item()
    if positives in (0, n_train):
        return None  # one class only: nothing to balance (the data stages warn about it)
    return torch.tensor((n_train - positives) / positives, dtype=torch.float32, device=y.device)


def _fit(
    model: Classifier,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    params: TrainParams,
    on_epoch: Callable[[EpochMetrics], Any],
    device: torch.device,
    world: World,
    counts: tuple[int, int | None],
) -> Fitted:
    model.to(device)
    x, y = (t.to(device) for t in train)
    val_x, val_y = (t.to(device) for t in val)
    n_train, own_rows = counts
    size = batch_size(params, n_train)
    pos_weight = _positive_weight(y, params, world, n_train, own_rows)
    trainer = _trainer(model, device, world)
    gen = torch.Generator().manual_seed(params.seed)  # on the CPU: the same order everywhere
    optim = optimizer(model, params)
    history: list[EpochMetrics] = []
    best_loss, best_epoch, best_state = math.inf, 0, None
    for epoch in range(1, params.epochs + 1):
        model.train()
        order = torch.randperm(len(x), generator=gen).to(device)
        sums = _epoch(trainer, optim, (x, y, y > 0.5), order, size // world.size, pos_weight)
        model.eval()
        totals: list[float] = all_sum(
            torch.cat([sums, _score_sums(model, val_x, val_y, pos_weight)]), world
        ).tolist()
        loss, correct, rows, val_loss, val_correct, val_rows = totals
        metrics = EpochMetrics(
            epoch, loss / rows, correct / rows, val_loss / val_rows, val_correct / val_rows
        )
        history.append(metrics)
        on_epoch(metrics)
        if metrics.val_loss < best_loss:  # NaN never is: a diverged epoch is never the best
            best_loss, best_epoch = metrics.val_loss, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif params.patience is not None and epoch - best_epoch >= params.patience:
            break
    if best_state is None:
        raise UserError(
            f"training diverged: the validation loss was never a finite number in "
            f"{len(history)} epochs; lower train.lr (now {params.lr})"
        )
    model.load_state_dict(best_state)
    model.to("cpu")
    return Fitted(history, best_epoch, size, len(history) < params.epochs)


@dataclass(frozen=True)
class Trained:
    """A trained model with what its checkpoint carries besides weights, and its epochs."""

    net: Classifier
    config: dict[str, Any]
    fitted: Fitted
    threshold: threshold.Threshold

    @property
    def history(self) -> list[EpochMetrics]:
        return self.fitted.history


def checkpoint_config(params: Params, preprocessor: Preprocessor, schema: Schema) -> dict[str, Any]:
    """What the checkpoint carries besides weights: how raw rows become inputs, and answers."""
    return {
        "features": [dict(f) for f in preprocessor.features],
        "columns": preprocessor.columns,
        "hidden_size": params.train.hidden_size,
        "threshold": params.evaluate.threshold,
        "label": params.data.label_column,
        "classes": list(schema.classes),
    }


def train(
    params: Params,
    preprocessor: Preprocessor,
    schema: Schema,
    train_rows: pd.DataFrame,
    val_rows: pd.DataFrame,
    *,
    device: torch.device | None = None,
    world: World = SINGLE,
    train_total: int | None = None,
    on_epoch: Callable[[EpochMetrics], Any] = lambda _: None,
    threshold_rows: pd.DataFrame | None = None,
) -> Trained:
    """A model trained on rows of network inputs (a column per `preprocessor.columns`, and
    the label), as the train stage trains it. With several processes, each passes its
    shard, and `train_total`, the train rows of all: shards are padded to the longest, so
    that every process takes the same steps. The decision threshold (evaluate.threshold,
    a number or a rule) is chosen on `threshold_rows`, by default `val_rows`: with several
    processes the main one passes all validation rows there."""
    if train_total is None and world.size > 1:
        raise ValueError(f"train: {world.size} processes need train_total, the rows of all")
    config = checkpoint_config(params, preprocessor, schema)
    columns, label = config["columns"], config["label"]
    rows_each = math.ceil((len(train_rows) if train_total is None else train_total) / world.size)
    inputs = pad(to_tensors(train_rows, columns, label), rows_each)
    net = build(len(columns), params.train.hidden_size, params.train.seed)
    net.set_scaler(preprocessor)
    net.silence_unused_inputs(inputs_used(preprocessor))
    val = to_tensors(val_rows, columns, label)
    fitted = fit(net, inputs, val, params.train, on_epoch=on_epoch, device=device, world=world,
                 train_total=len(train_rows) if train_total is None else train_total,
                 own_rows=len(train_rows))  # fmt: skip
    rows = val if threshold_rows is None else to_tensors(threshold_rows, columns, label)
    y_val, p_val = _probability(net, rows, params.train.numerics)
    chosen = threshold.choose(params.evaluate.threshold, y_val, p_val)
    config["threshold"] = chosen.value
    return Trained(net, config, fitted, chosen)


@torch.no_grad()
def _probability(
    net: Classifier, rows: tuple[torch.Tensor, torch.Tensor], mode: numerics.Numerics
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and the trained model's probabilities for rows of network inputs."""
    x, y = rows
    with numerics.one_thread(mode):
        prob = torch.sigmoid(net.logits(x)).double().numpy()
    return y.numpy() > 0.5, prob


def checkpoint(model: Classifier, config: dict[str, Any]) -> dict[str, Any]:
    """Weights plus what rebuilds the model; loadable with torch.load(weights_only=True)."""
    return {"state_dict": model.state_dict(), "config": config}


def checkpoint_bytes(data: dict[str, Any]) -> bytes:
    """The checkpoint as torch.save writes it, always the same bytes for the same content.

    torch.save names the archive's inner folder after the file it is given, so saving to a
    temporary file name would make every save differ; a buffer is always named 'archive'.
    """
    buffer = io.BytesIO()
    torch.save(data, buffer)
    return buffer.getvalue()


def identity(data: dict[str, Any]) -> str:
    """What the model is: a digest of its weights (names, dtypes, shapes, values) and config.

    Independent of how the checkpoint was serialised, so equal models have equal ids.
    """
    h = hashlib.sha256(json.dumps(data["config"], sort_keys=True).encode())
    for name, tensor in sorted(data["state_dict"].items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"\x1e{name}\x1f{t.dtype}\x1f{tuple(t.shape)}\x1f".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def from_checkpoint(data: dict[str, Any]) -> Classifier:
    config = data["config"]
    model = Classifier(len(config["columns"]), config["hidden_size"])
    model.load_state_dict(data["state_dict"])
    return model.eval()
