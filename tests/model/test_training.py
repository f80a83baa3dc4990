"""Behaviour of the trained model on the default config: learning, determinism, serving shape."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pandas as pd
import pytest
import torch

from epochline import model
from epochline.data import make_synthetic
from epochline.params import Params
from epochline.preprocessing import Preprocessor
from epochline.schema import NUMBER, NUMERIC, Feature, Schema
from epochline.splitting import TEST, TRAIN, VAL, assign, key_columns

DEFAULTS = Params()


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    d = DEFAULTS.data
    raw = make_synthetic(d.n_rows, d.n_features, d.seed)
    part = assign(raw, key_columns(list(raw.columns), None), DEFAULTS.split)
    return {name: raw[part == name] for name in (TRAIN, VAL, TEST)}


def _fit_preprocessor(train_rows: pd.DataFrame) -> Preprocessor:
    features = [c for c in train_rows.columns if c != "label"]
    schema = Schema(
        tuple(train_rows.columns),
        "label",
        None,
        tuple(Feature(f, NUMERIC, NUMBER) for f in features),
    )
    return Preprocessor.fit(train_rows, schema, 20, "train rows")


def train(tables: dict[str, pd.DataFrame], **overrides: float) -> tuple[model.Classifier, list]:
    params = DEFAULTS.train.model_copy(update=overrides)
    features = [c for c in tables[TRAIN].columns if c != "label"]
    scaler = _fit_preprocessor(tables[TRAIN])
    net = model.build(len(features), params.hidden_size, params.seed)
    net.set_scaler(scaler)
    history = model.fit(
        net,
        model.to_tensors(
            scaler.transform(tables[TRAIN]).assign(label=tables[TRAIN]["label"]), features, "label"
        ),
        model.to_tensors(
            scaler.transform(tables[VAL]).assign(label=tables[VAL]["label"]), features, "label"
        ),
        params,
    )
    return net, history


def predict(net: model.Classifier, rows: pd.DataFrame) -> np.ndarray:
    with torch.no_grad():
        return net(torch.tensor(rows.drop(columns="label").to_numpy())).numpy()


def test_default_config_learns_loss_falls_every_epoch_and_test_accuracy_at_least_085(
    tables: dict[str, pd.DataFrame],
) -> None:
    net, history = train(tables)
    losses = [m.train_loss for m in history]
    assert all(b < a for a, b in itertools.pairwise(losses)), losses
    accuracy = ((predict(net, tables[TEST]) >= 0.5) == tables[TEST]["label"].to_numpy()).mean()
    assert accuracy >= 0.85


def test_same_params_and_data_give_bitwise_identical_weights(
    tables: dict[str, pd.DataFrame],
) -> None:
    first, history_a = train(tables, epochs=3)
    second, history_b = train(tables, epochs=3)
    for name, tensor in first.state_dict().items():
        assert torch.equal(tensor, second.state_dict()[name]), name
    assert history_a == history_b


def test_another_seed_gives_other_weights(tables: dict[str, pd.DataFrame]) -> None:
    first, _ = train(tables, epochs=1)
    other, _ = train(tables, epochs=1, seed=7)
    assert not torch.equal(first.hidden.weight, other.hidden.weight)


def test_model_takes_raw_rows_scaling_is_inside(tables: dict[str, pd.DataFrame]) -> None:
    net, _ = train(tables, epochs=2)
    features = [c for c in tables[TEST].columns if c != "label"]
    scaler = _fit_preprocessor(tables[TRAIN])
    normalized = torch.tensor(scaler.transform(tables[TEST])[features].to_numpy(np.float32))
    with torch.no_grad():
        via_logits = torch.sigmoid(net.logits(normalized)).numpy()
    assert np.array_equal(predict(net, tables[TEST]), via_logits)


def test_checkpoint_round_trips_without_unpickling_objects(
    tables: dict[str, pd.DataFrame],
) -> None:
    net, _ = train(tables, epochs=1)
    buffer = io.BytesIO()
    config = {"columns": [f"x{i}" for i in range(10)], "hidden_size": 16, "threshold": 0.5}
    torch.save(model.checkpoint(net, config), buffer)
    buffer.seek(0)
    restored = model.from_checkpoint(torch.load(buffer, weights_only=True))
    assert np.array_equal(predict(restored, tables[TEST]), predict(net, tables[TEST]))


def test_served_forward_pass_equals_the_trained_module(tables: dict[str, pd.DataFrame]) -> None:
    # serving.py is self-contained (it must not import epochline); pin it to the module.
    from epochline.serving import probability

    net, _ = train(tables, epochs=2)
    raw = tables[TEST].drop(columns="label").to_numpy()
    assert np.array_equal(probability(net.state_dict(), raw), predict(net, tables[TEST]))
