"""Behaviour of the model the train stage's core gives on the default config: learning,
determinism, serving shape. The tables are built in memory by the functions the load,
normalize and split stages use, and trained by `model.train`, as the stage trains them."""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from epochline.core.params import Params
from epochline.data.preprocessing import Preprocessor
from epochline.data.schema import Schema
from epochline.data.sources import assemble, load_parts
from epochline.data.splitting import TEST, TRAIN, VAL, assign, is_train, key_columns
from epochline.serving.model_code import design
from epochline.training import model
from epochline.training.distributed import World

DEFAULTS = Params()


@dataclass(frozen=True)
class Tables:
    schema: Schema
    preprocessor: Preprocessor
    train: pd.DataFrame  # network inputs and the label, as split writes them
    val: pd.DataFrame
    test: pd.DataFrame  # raw rows, as clients send them


def _raw(where: Path) -> tuple[Schema, pd.DataFrame]:
    """The load stage's table on the defaults, in a folder with no incoming batches."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(where)
        schema, parts = load_parts(DEFAULTS.data)
    return schema, assemble(parts, schema, DEFAULTS.data)


def _tables(schema: Schema, raw: pd.DataFrame) -> Tables:
    """normalize (preprocessing fitted on the training rows) and split, in memory."""
    mask = is_train(raw, schema.id_column, DEFAULTS.split)
    preprocessor = Preprocessor.fit(raw, schema, DEFAULTS.data.max_categories, "raw", mask)
    inputs = preprocessor.transform(raw, np.float32).assign(label=raw[schema.label])
    part = assign(raw, key_columns(list(raw.columns), schema.id_column), DEFAULTS.split)
    return Tables(
        schema, preprocessor, inputs[part == TRAIN], inputs[part == VAL], raw[part == TEST]
    )


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> tuple[Schema, pd.DataFrame]:
    return _raw(tmp_path_factory.mktemp("load"))


@pytest.fixture(scope="module")
def tables(raw: tuple[Schema, pd.DataFrame]) -> Tables:
    return _tables(*raw)


def train(tables: Tables, **overrides: float) -> model.Trained:
    params = DEFAULTS.model_copy(update={"train": DEFAULTS.train.model_copy(update=overrides)})
    return model.train(params, tables.preprocessor, tables.schema, tables.train, tables.val)


def predict(trained: model.Trained, rows: pd.DataFrame) -> np.ndarray:
    """Probabilities for raw rows, through the trained module's own forward pass."""
    with torch.no_grad():
        return trained.net(torch.tensor(design(trained.config["features"], rows))).numpy()


def test_default_config_learns_loss_falls_every_epoch_and_test_accuracy_at_least_085(
    tables: Tables,
) -> None:
    trained = train(tables)
    losses = [m.train_loss for m in trained.history]
    assert len(losses) == DEFAULTS.train.epochs
    assert all(b < a for a, b in itertools.pairwise(losses)), losses
    labels = tables.test[tables.schema.label].to_numpy()
    assert ((predict(trained, tables.test) >= 0.5) == labels).mean() >= 0.85


def test_same_params_and_data_give_bitwise_identical_weights(tables: Tables) -> None:
    first, second = train(tables, epochs=3), train(tables, epochs=3)
    for name, tensor in first.net.state_dict().items():
        assert torch.equal(tensor, second.net.state_dict()[name]), name
    assert first.history == second.history
    checkpoints = [model.checkpoint(t.net, t.config) for t in (first, second)]
    assert model.checkpoint_bytes(checkpoints[0]) == model.checkpoint_bytes(checkpoints[1])


def test_another_seed_gives_other_weights(tables: Tables) -> None:
    first, other = train(tables, epochs=1), train(tables, epochs=1, seed=7)
    # By about their own size (~0.2), as other initial weights make them; one epoch in
    # another order alone moves them by ~0.0002.
    assert (first.net.hidden.weight - other.net.hidden.weight).abs().mean() > 0.05


def test_each_epoch_is_reported_as_it_ends(tables: Tables) -> None:
    seen: list[model.EpochMetrics] = []
    params = DEFAULTS.model_copy(update={"train": DEFAULTS.train.model_copy(update={"epochs": 3})})
    trained = model.train(
        params, tables.preprocessor, tables.schema, tables.train, tables.val, on_epoch=seen.append
    )
    assert seen == trained.history
    assert [m.epoch for m in seen] == [1, 2, 3]


def test_checkpoint_config_holds_what_rebuilds_and_serves_the_model(tables: Tables) -> None:
    config = train(tables, epochs=1).config
    assert config == {
        "features": [dict(f) for f in tables.preprocessor.features],
        "columns": tables.preprocessor.columns,
        "hidden_size": DEFAULTS.train.hidden_size,
        "threshold": DEFAULTS.evaluate.threshold,
        "label": DEFAULTS.data.label_column,
        "classes": [0, 1],
    }


def test_model_takes_raw_rows_scaling_is_inside(tables: Tables) -> None:
    trained = train(tables, epochs=2)
    normalized = torch.tensor(tables.preprocessor.transform(tables.test, np.float32).to_numpy())
    with torch.no_grad():
        via_logits = torch.sigmoid(trained.net.logits(normalized)).numpy()
    assert np.array_equal(predict(trained, tables.test), via_logits)


def test_an_input_no_training_row_varies_keeps_a_zero_weight(
    raw: tuple[Schema, pd.DataFrame],
) -> None:
    schema, rows = raw
    constant = _tables(schema, rows.assign(x3=2.5))
    trained = train(constant, epochs=2)
    column = constant.preprocessor.columns.index("x3")
    assert (trained.net.hidden.weight[:, column] == 0).all()
    assert (trained.net.hidden.weight[:, column + 1] != 0).any()


def test_several_processes_need_the_train_rows_of_all(tables: Tables) -> None:
    with pytest.raises(ValueError, match="2 processes need train_total"):
        model.train(
            DEFAULTS, tables.preprocessor, tables.schema, tables.train, tables.val,
            world=World(rank=0, size=2),
        )  # fmt: skip


def test_checkpoint_round_trips_without_unpickling_objects(tables: Tables) -> None:
    trained = train(tables, epochs=1)
    buffer = io.BytesIO(model.checkpoint_bytes(model.checkpoint(trained.net, trained.config)))
    restored = model.from_checkpoint(torch.load(buffer, weights_only=True))
    again = model.Trained(restored, trained.config, trained.history)
    assert np.array_equal(predict(again, tables.test), predict(trained, tables.test))


def test_served_forward_pass_equals_the_trained_module(tables: Tables) -> None:
    # serving/model_code.py is self-contained (it must not import epochline); pin it to the module.
    from epochline.serving.model_code import answer, probability

    trained = train(tables, epochs=2)
    matrix = design(trained.config["features"], tables.test)
    expected = predict(trained, tables.test)
    assert np.array_equal(probability(trained.net.state_dict(), matrix), expected)
    served = answer(trained.net.state_dict(), trained.config, tables.test)
    assert np.array_equal(served["label"].to_numpy(), (expected >= 0.5).astype(np.int64))


def _serving_before_the_regroup() -> str:
    """The logged model's code as it was before the package was regrouped (its name check
    then read the old module name): the code a model logged before the move carries. A copy
    in the tests, so that a shallow clone checks it too."""
    return (Path(__file__).parent / "fixtures" / "serving_before_regroup.py").read_text()


def test_a_model_logged_before_the_regroup_still_loads_and_answers(
    tables: Tables, tmp_path: Path
) -> None:
    import mlflow

    from epochline.serving.model_code import answer

    old_code = tmp_path / "serving.py"  # regroup: keep
    old_code.write_text(_serving_before_the_regroup())
    trained = train(tables, epochs=1)
    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(model.checkpoint_bytes(model.checkpoint(trained.net, trained.config)))
    rows = tables.test[[f["name"] for f in trained.config["features"]]].head(20)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        with mlflow.start_run():
            info = mlflow.pyfunc.log_model(
                name="model", python_model=str(old_code),
                artifacts={"checkpoint": str(checkpoint)}, pip_requirements=["mlflow"],
            )  # fmt: skip
        served = mlflow.pyfunc.load_model(info.model_uri).predict(rows)
    finally:
        mlflow.set_tracking_uri(None)
    expected = answer(trained.net.state_dict(), trained.config, rows)
    pd.testing.assert_frame_equal(served.reset_index(drop=True), expected)
