"""The classifier and its training loop: tensors and params in, trained weights and history out.

No file or MLflow I/O here; `fit` trains the model in place.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from epochline.params import TrainParams
from epochline.preprocessing import Preprocessor
from epochline.serving import LIMIT


class Classifier(nn.Module):
    """inputs → min-max scaling (clipped) → Linear → ReLU → Linear → sigmoid.

    The scaling lives in buffers, so the saved weights take unscaled inputs (serving.design
    makes them from raw rows): what is trained on normalised data is served on raw data.
    """

    x_min: torch.Tensor
    x_span: torch.Tensor

    def __init__(self, n_features: int, hidden_size: int) -> None:
        super().__init__()
        self.register_buffer("x_min", torch.zeros(n_features, dtype=torch.float64))
        self.register_buffer("x_span", torch.ones(n_features, dtype=torch.float64))
        self.hidden = nn.Linear(n_features, hidden_size)
        self.out = nn.Linear(hidden_size, 1)

    def logits(self, normalized: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(normalized))).squeeze(-1)

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        """Probability of class 1 for unscaled inputs."""
        normalized = ((raw.double() - self.x_min) / self.x_span).clamp(-LIMIT, LIMIT).float()
        return torch.sigmoid(self.logits(normalized))

    def set_scaler(self, preprocessor: Preprocessor) -> None:
        self.x_min.copy_(torch.tensor(preprocessor.minimum, dtype=torch.float64))
        self.x_span.copy_(torch.from_numpy(preprocessor.span))

    @torch.no_grad()
    def silence_unused_inputs(self, x: torch.Tensor) -> None:
        """Zero the weights of inputs that are 0 in every training row (a category slot no
        training row fills): they get no gradient, so they stay 0, and a category first seen
        when serving adds nothing instead of a random initial weight."""
        unused = (x == 0).all(dim=0)
        self.hidden.weight[:, unused] = 0.0


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
    x = torch.tensor(df[features].to_numpy(dtype=np.float32))
    y = torch.tensor(df[label].to_numpy(dtype=np.float32))
    return x, y


@torch.no_grad()
def _score(model: Classifier, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    logits = model.logits(x)
    loss = nn.functional.binary_cross_entropy_with_logits(logits, y).item()
    accuracy = ((logits > 0).float() == y).float().mean().item()
    return loss, accuracy


def fit(
    model: Classifier,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    params: TrainParams,
    on_epoch: Callable[[EpochMetrics], Any] = lambda _: None,
) -> list[EpochMetrics]:
    """SGD over preloaded tensors, sliced by a seeded permutation per epoch."""
    torch.use_deterministic_algorithms(True)
    x, y = train
    gen = torch.Generator().manual_seed(params.seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=params.lr, momentum=params.momentum)
    history = []
    for epoch in range(1, params.epochs + 1):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), params.batch_size):
            batch = order[start : start + params.batch_size]
            loss = nn.functional.binary_cross_entropy_with_logits(model.logits(x[batch]), y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        metrics = EpochMetrics(epoch, *_score(model, x, y), *_score(model, *val))
        history.append(metrics)
        on_epoch(metrics)
    return history


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
