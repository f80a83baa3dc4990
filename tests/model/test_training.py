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

from epochline.core.errors import UserError
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


def train(tables: Tables, threshold: float | str = 0.5, **overrides: object) -> model.Trained:
    params = DEFAULTS.model_copy(update={
        "train": DEFAULTS.train.model_copy(update=overrides),
        "evaluate": DEFAULTS.evaluate.model_copy(update={"threshold": threshold}),
    })  # fmt: skip
    return model.train(params, tables.preprocessor, tables.schema, tables.train, tables.val)


def val_loss(trained: model.Trained, tables: Tables) -> float:
    """The validation loss of the weights the model holds, computed afresh."""
    x, y = model.to_tensors(tables.val, tables.preprocessor.columns, tables.schema.label)
    with torch.no_grad():
        logits = trained.net.logits(x)
        return float(torch.nn.functional.binary_cross_entropy_with_logits(logits, y))


def predict(trained: model.Trained, rows: pd.DataFrame) -> np.ndarray:
    """Probabilities for raw rows, through the trained module's own forward pass."""
    with torch.no_grad():
        return trained.net(torch.tensor(design(trained.config["features"], rows))).numpy()


def test_default_config_learns_loss_falls_over_the_first_epochs_and_test_accuracy_at_least_09(
    tables: Tables,
) -> None:
    trained = train(tables)
    losses = [m.train_loss for m in trained.history]
    assert all(b < a for a, b in itertools.pairwise(losses[:10])), losses
    labels = tables.test[tables.schema.label].to_numpy()
    assert ((predict(trained, tables.test) >= 0.5) == labels).mean() >= 0.9


def test_training_stops_after_patience_epochs_and_keeps_the_best_epochs_weights(
    tables: Tables,
) -> None:
    trained = train(tables, patience=3)
    fitted, history = trained.fitted, trained.history
    losses = [m.val_loss for m in history]
    assert fitted.best_epoch == losses.index(min(losses)) + 1
    # It stopped exactly `patience` epochs after the best one, well before the maximum.
    assert fitted.stopped_early and len(history) == fitted.best_epoch + 3 < DEFAULTS.train.epochs
    # The weights are the best epoch's, not the last's: their val loss is the best one.
    assert val_loss(trained, tables) == pytest.approx(losses[fitted.best_epoch - 1], rel=1e-6)
    assert losses[-1] > losses[fitted.best_epoch - 1]


def test_without_patience_every_epoch_runs(tables: Tables) -> None:
    trained = train(tables, patience=None, epochs=12)
    assert len(trained.history) == 12 and not trained.fitted.stopped_early


@pytest.mark.parametrize(
    ("rows", "processes", "expected"),
    [(50, 1, 32), (720, 1, 32), (5_000, 1, 64), (100_000, 1, 1024), (10_000_000, 1, 1024),
     (720, 3, 33), (100_000, 3, 1026)],
)  # fmt: skip
def test_auto_batch_size_gives_about_64_steps_an_epoch_between_32_and_1024(
    rows: int, processes: int, expected: int
) -> None:
    assert model.auto_batch_size(rows, processes) == expected


def test_sgd_with_momentum_still_trains_and_differs_from_adamw(tables: Tables) -> None:
    sgd, adamw = train(tables, optimizer="sgd", lr=0.015, epochs=5), train(tables, epochs=5)
    assert sgd.history[-1].train_loss < sgd.history[0].train_loss
    assert not torch.equal(sgd.net.hidden.weight, adamw.net.hidden.weight)


def test_balanced_class_weight_weighs_the_rarer_class_up(tables: Tables) -> None:
    # Drop most positive training rows: the weighted loss must count them as many as negatives.
    rare = tables.train[tables.train["label"] == 1].iloc[::8]
    skewed = Tables(tables.schema, tables.preprocessor,
                    pd.concat([tables.train[tables.train["label"] == 0], rare]),
                    tables.val, tables.test)  # fmt: skip
    plain, balanced = train(skewed, epochs=8), train(skewed, epochs=8, class_weight="balanced")
    labels = skewed.test[skewed.schema.label].to_numpy()
    called = [(predict(t, skewed.test) >= 0.5).mean() for t in (plain, balanced)]
    # Balanced weights call more rows positive, and find more of the true positives.
    assert called[1] > called[0]
    recall = [((predict(t, skewed.test) >= 0.5) & (labels == 1)).sum() for t in (plain, balanced)]
    assert recall[1] > recall[0]


def test_a_threshold_rule_is_chosen_on_the_validation_rows_and_baked_into_the_model(
    tables: Tables,
) -> None:
    trained = train(tables, threshold="recall>=0.99", epochs=5)
    x, y = model.to_tensors(tables.val, tables.preprocessor.columns, tables.schema.label)
    with torch.no_grad():
        prob = torch.sigmoid(trained.net.logits(x)).double().numpy()
    chosen = trained.config["threshold"]
    assert trained.threshold.value == chosen and chosen in prob
    positives = y.numpy() > 0.5
    assert (prob[positives] >= chosen).mean() >= 0.99  # the rule holds on the val rows
    assert (prob[positives] >= np.nextafter(chosen, 1)).mean() < 0.99  # and no higher one does


def test_a_diverging_fit_stops_with_a_line_naming_the_learning_rate(tables: Tables) -> None:
    with pytest.raises(UserError, match=r"training diverged.*lower train\.lr \(now 1e\+30\)"):
        train(tables, lr=1e30, optimizer="sgd", epochs=3)


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
    again = model.Trained(restored, trained.config, trained.fitted, trained.threshold)
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
    # Its checkpoint named the scaling buffers x_min and x_span (min-max then; the same
    # arithmetic, (x - x_min) / x_span, as standardisation's centre and scale now).
    names = {"x_center": "x_min", "x_scale": "x_span"}
    state = {names.get(k, k): v for k, v in trained.net.state_dict().items()}
    checkpoint.write_bytes(model.checkpoint_bytes({"state_dict": state, "config": trained.config}))
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


def test_balanced_weight_counts_a_shards_own_rows_not_its_padding() -> None:
    # Five rows, three positive, padded with a repeat of the first (positive) row: the
    # weight is negatives/positives of the five, 2/3, not of the six.
    y = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 1.0])
    balanced = DEFAULTS.train.model_copy(update={"class_weight": "balanced"})
    weight = model._positive_weight(y, balanced, World(rank=0, size=1), 5, own_rows=5)
    assert weight is not None and weight.item() == pytest.approx(2 / 3)
    assert model._positive_weight(y, DEFAULTS.train, World(rank=0, size=1), 5, 5) is None
