"""params.yaml is parsed once into a typed model; bad values stop with one clear line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from epochline.core.errors import UserError
from epochline.core.params import (
    DataParams,
    EvaluateParams,
    Params,
    RetrainParams,
    SplitParams,
    TrackingParams,
    TrainParams,
    load_params,
    parse_params,
)

REPO_PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"
SECTIONS = {
    "data": DataParams,
    "split": SplitParams,
    "train": TrainParams,
    "evaluate": EvaluateParams,
    "tracking": TrackingParams,
    "retrain": RetrainParams,
}


def _error(raw: Any, path: Path = Path("params.yaml")) -> str:
    with pytest.raises(UserError) as caught:
        parse_params(raw, path)
    return str(caught.value)


def _assert_one_line(message: str) -> None:
    assert message.strip(), "empty error message"
    assert "\n" not in message, f"message spans lines: {message!r}"


@pytest.mark.parametrize("raw", [None, {}])
def test_empty_file_means_defaults(raw: Any) -> None:
    assert parse_params(raw) == Params()


def test_code_defaults_are_the_repo_params_yaml() -> None:
    # One set of defaults: an empty params.yaml runs what the shipped one runs.
    assert Params() == load_params(REPO_PARAMS)
    assert Params().data.source == "synthetic"
    assert Params().data.id_column is None


def test_repo_params_yaml_parses_and_sets_every_key() -> None:
    params = load_params(REPO_PARAMS)
    raw = yaml.safe_load(REPO_PARAMS.read_text())
    # Every key written in params.yaml must reach the model with the same value.
    for section, values in raw.items():
        for key, value in values.items():
            assert getattr(getattr(params, section), key) == value, f"{section}.{key}"


def test_params_are_frozen() -> None:
    params = Params()
    with pytest.raises(ValueError):
        params.train.epochs = 3  # type: ignore[misc]


def test_flat_has_every_key_of_every_section_dotted() -> None:
    flat = Params().flat()
    expected = {f"{s}.{k}" for s, model in SECTIONS.items() for k in model.model_fields}
    assert set(flat) == expected
    assert flat["train.lr"] == Params().train.lr
    assert flat["split.test_size"] == 0.2
    assert flat["data.id_column"] is None


def test_flat_reflects_overrides() -> None:
    flat = parse_params({"train": {"lr": 0.5, "epochs": 3}}).flat()
    assert flat["train.lr"] == 0.5
    assert flat["train.epochs"] == 3


@pytest.mark.parametrize(
    ("raw", "key", "value", "expected"),
    [
        ({"train": {"epochs": "ten"}}, "train.epochs", "'ten'", "an integer"),
        ({"train": {"epochs": True}}, "train.epochs", "True", "an integer"),
        ({"train": {"epochs": 2.5}}, "train.epochs", "2.5", "an integer"),
        ({"train": {"lr": "x"}}, "train.lr", "'x'", "a number"),
        ({"train": {"batch_size": [32]}}, "train.batch_size", "[32]", "a whole number"),
        ({"train": {"batch_size": "big"}}, "train.batch_size", "'big'", "or auto"),
        ({"train": {"patience": "x"}}, "train.patience", "'x'", "an integer or null"),
        ({"split": {"seed": "42"}}, "split.seed", "'42'", "an integer"),
        ({"data": {"source": 5}}, "data.source", "5", "text"),
        ({"data": {"id_column": 5}}, "data.id_column", "5", "text or null"),
        ({"train": 5}, "train", "5", "a mapping of keys"),
        ({"evaluate": {"threshold": "high"}}, "evaluate.threshold", "'high'", "max_f1"),
        ({"evaluate": {"threshold": True}}, "evaluate.threshold", "True", "a probability"),
    ],
)
def test_wrong_type_names_key_value_and_expected_type(
    raw: Any, key: str, value: str, expected: str
) -> None:
    message = _error(raw)
    _assert_one_line(message)
    assert message.startswith(f"params.yaml: {key} = {value} ")
    # Strict types: "ten", True and 2.5 are not coerced into an int behind the user's back.
    allowed = message.split("allowed", 1)[-1]
    assert "allowed" in message
    assert expected in allowed


@pytest.mark.parametrize(
    ("raw", "key", "value", "allowed"),
    [
        ({"train": {"epochs": 0}}, "train.epochs", "0", "greater than or equal to 1"),
        ({"train": {"epochs": -3}}, "train.epochs", "-3", "greater than or equal to 1"),
        ({"train": {"lr": 0}}, "train.lr", "0", "greater than 0"),
        ({"train": {"lr": -1}}, "train.lr", "-1", "greater than 0"),
        ({"train": {"batch_size": 0}}, "train.batch_size", "0", "at least 1, or auto"),
        ({"train": {"patience": 0}}, "train.patience", "0", "greater than or equal to 1"),
        ({"train": {"optimizer": "adam"}}, "train.optimizer", "'adam'", "'adamw' or 'sgd'"),
        ({"train": {"class_weight": "auto"}}, "train.class_weight", "'auto'", "'balanced'"),
        ({"train": {"momentum": 1}}, "train.momentum", "1", "less than 1"),
        ({"split": {"test_size": 0}}, "split.test_size", "0", "greater than 0"),
        ({"split": {"test_size": 1}}, "split.test_size", "1", "less than 1"),
        ({"split": {"val_size": 1.5}}, "split.val_size", "1.5", "less than 1"),
        ({"evaluate": {"threshold": 1.2}}, "evaluate.threshold", "1.2", "between 0 and 1"),
        ({"evaluate": {"threshold": "recall>=0"}}, "evaluate.threshold", "'recall>=0'", "above 0"),
        (
            {"evaluate": {"threshold": "precision>=1.5"}},
            "evaluate.threshold",
            "'precision>=1.5'",
            "at most 1",
        ),
        ({"retrain": {"baseline_margin": 1}}, "retrain.baseline_margin", "1", "less than 1"),
        ({"data": {"min_rows": 1}}, "data.min_rows", "1", "greater than or equal to 2"),
        ({"retrain": {"metric": "mse"}}, "retrain.metric", "'mse'", "'roc_auc'"),
        ({"retrain": {"seeds": 0}}, "retrain.seeds", "0", "greater than or equal to 1"),
        ({"retrain": {"seeds": 21}}, "retrain.seeds", "21", "less than or equal to 20"),
        ({"retrain": {"seeds": 2.5}}, "retrain.seeds", "2.5", "integer"),
    ],
)
def test_out_of_range_names_key_value_and_bound(
    raw: Any, key: str, value: str, allowed: str
) -> None:
    message = _error(raw)
    _assert_one_line(message)
    assert message.startswith(f"params.yaml: {key} = {value} ")
    assert allowed in message.split("allowed", 1)[-1]


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"trian": {"epochs": 3}}, "trian"),
        ({"train": {"epochz": 3}}, "train.epochz"),
        ({"split": {"test_size": 0.2, "shuffle": True}}, "split.shuffle"),
        ({"data": {"label": "y"}}, "data.label"),
    ],
)
def test_unknown_key_is_named(raw: Any, key: str) -> None:
    message = _error(raw)
    _assert_one_line(message)
    assert f"unknown key '{key}'" in message


@pytest.mark.parametrize("section", ["train", "split"])
def test_unknown_key_message_lists_allowed_keys(section: str) -> None:
    message = _error({section: {"bogus": 1}})
    for key in SECTIONS[section].model_fields:
        assert key in message


@pytest.mark.parametrize("raw", [[1, 2], "epochs: 3", 42, {"train": 5}, {"train": [1]}], ids=repr)
def test_non_mapping_is_rejected_on_one_line(raw: Any) -> None:
    message = _error(raw)
    _assert_one_line(message)
    assert message.startswith("params.yaml: ")


def test_non_mapping_names_what_was_found() -> None:
    assert "got list" in _error([1, 2])


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0.5", 0.5), ("1.0e-3", 1e-3), ("1", 1.0)],
)
def test_yaml_numbers_reach_float_fields(tmp_path: Path, value: str, expected: float) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(f"train:\n  lr: {value}\n")
    assert load_params(path).train.lr == expected


def test_exponent_without_dot_is_a_float(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  lr: 1e-3\n")
    assert load_params(path).train.lr == 1e-3


@pytest.mark.parametrize(("key", "value"), [("lr", ".nan"), ("momentum", ".inf")])
def test_non_finite_bounded_float_is_rejected(tmp_path: Path, key: str, value: str) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(f"train:\n  {key}: {value}\n")
    with pytest.raises(UserError, match=rf"train\.{key} = "):
        load_params(path)


def test_infinite_learning_rate_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  lr: .inf\n")
    with pytest.raises(UserError):
        load_params(path)


def test_invalid_yaml_is_one_line_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("train:\n  epochs: [1, 2\n  lr: 0.1\n")
    with pytest.raises(UserError) as caught:
        load_params(path)
    message = str(caught.value)
    _assert_one_line(message)
    assert str(path) in message
    assert "not valid YAML" in message


def test_missing_file_is_one_line_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "params.yaml"
    with pytest.raises(UserError) as caught:
        load_params(path)
    message = str(caught.value)
    _assert_one_line(message)
    assert str(path) in message
    assert "not found" in message


def test_error_from_file_names_that_file(tmp_path: Path) -> None:
    path = tmp_path / "custom.yaml"
    path.write_text("train:\n  epochs: 0\n")
    with pytest.raises(UserError, match=r"custom\.yaml: train\.epochs = 0 "):
        load_params(path)


def test_user_error_exits_with_code_two() -> None:
    assert UserError.exit_code == 2


@pytest.mark.parametrize(
    ("given", "expected"),
    [(0.3, 0.3), ("max_f1", "max_f1"), ("precision >= 0.9", "precision>=0.9"),
     ("recall>=1", "recall>=1"), ("recall>=.8", "recall>=.8")],
)  # fmt: skip
def test_threshold_takes_a_probability_or_a_named_rule(given: Any, expected: Any) -> None:
    assert parse_params({"evaluate": {"threshold": given}}).evaluate.threshold == expected


def test_retrain_seeds_is_one_unless_asked_and_params_yaml_says_so() -> None:
    assert RetrainParams().seeds == 1
    assert load_params(REPO_PARAMS).retrain.seeds == 1
    assert RetrainParams(seeds=3).seeds == 3
