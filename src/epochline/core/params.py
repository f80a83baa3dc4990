"""The one typed, validated model of params.yaml. Nothing else reads that file."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from epochline.core.errors import UserError, first_line
from epochline.core.numerics import Numerics

PARAMS_FILE = Path("params.yaml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class DataParams(_Section):
    source: str = Field("synthetic", min_length=1)
    incoming_dir: str = Field("data/incoming", min_length=1)
    label_column: str = Field("label", min_length=1)
    positive_class: StrictBool | StrictInt | StrictStr = 1
    id_column: str | None = None
    features: list[str] | None = None
    exclude: list[str] = []
    categorical: list[str] = []
    max_categories: int = Field(20, ge=1, le=1000)
    n_rows: int = Field(1000, ge=10)
    n_features: int = Field(10, ge=1, le=1000)
    seed: int = Field(42, ge=0, le=2**32 - 1)
    min_rows: int = Field(50, ge=2)

    @field_validator("incoming_dir")
    @classmethod
    def _inside_repo(cls, value: str) -> str:
        # DVC tracks it as a dependency and new-batch writes there: it must be in the repo.
        parts = PurePosixPath(value).parts
        if (
            PurePosixPath(value).is_absolute()
            or PureWindowsPath(value).is_absolute()
            or (".." in parts)
        ):
            raise ValueError("a folder inside the repository, as a relative path without '..'")
        return value

    @model_validator(mode="after")
    def _one_way_to_pick_features(self) -> DataParams:
        if self.features is not None and self.exclude:
            raise ValueError("data.features or data.exclude, not both")
        return self


class SplitParams(_Section):
    test_size: float = Field(0.2, gt=0, lt=1)
    val_size: float = Field(0.1, gt=0, lt=1)
    seed: int = Field(42, ge=0, le=2**32 - 1)


AUTO: Literal["auto"] = "auto"
# evaluate.threshold as a rule: the best F1, or the threshold that reaches a precision or
# recall on the validation rows (its value then comes from training; evaluation/threshold.py).
THRESHOLD_RULE = re.compile(r"^(max_f1|(precision|recall)>=(0(\.\d+)?|1(\.0*)?|\.\d+))$")


class TrainParams(_Section):
    lr: float = Field(0.003, gt=0)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    epochs: int = Field(200, ge=1)  # the most: early stopping (patience) usually ends sooner
    patience: int | None = Field(10, ge=1)
    batch_size: int | Literal["auto"] = AUTO
    hidden_size: int = Field(16, ge=1)
    weight_decay: float = Field(0.01, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    class_weight: Literal["none", "balanced"] = "none"
    seed: int = Field(42, ge=0, le=2**32 - 1)
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    nproc_per_node: int = Field(1, ge=1, le=1024)
    nnodes: int = Field(1, ge=1, le=10000)
    numerics: Numerics = "portable"

    @field_validator("batch_size", mode="plain")
    @classmethod
    def _batch_size(cls, value: Any) -> int | str:
        if value == AUTO or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            return value
        raise ValueError("a whole number of rows, at least 1, or auto")

    @property
    def world_size(self) -> int:
        return self.nproc_per_node * self.nnodes


class EvaluateParams(_Section):
    threshold: float | str = 0.5  # a probability, or a rule (evaluation/threshold.py)

    @field_validator("threshold", mode="plain")
    @classmethod
    def _threshold(cls, value: Any) -> float | str:
        if isinstance(value, str):
            rule = value.replace(" ", "")
            match = THRESHOLD_RULE.match(rule)
            if match and (match.group(3) is None or float(match.group(3)) > 0):
                return rule
        elif isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 1:
            return float(value)
        raise ValueError(
            "a probability between 0 and 1 (exclusive), max_f1, precision>=P or recall>=R "
            "(P and R above 0, at most 1)"
        )


class TrackingParams(_Section):
    experiment_name: str = Field("epochline", min_length=1)
    registered_model_name: str = Field("epochline-classifier", min_length=1)


SEEDS_MAX = 20  # retrain.seeds: each is a model trained and scored during the retrain


class RetrainParams(_Section):
    metric: Literal[
        "accuracy",
        "f1",
        "roc_auc",
        "pr_auc",
        "balanced_accuracy",
        "precision",
        "recall",
        "log_loss",
    ] = "accuracy"
    min_delta: float = Field(0.01, ge=0, lt=1)
    min_metric: float = Field(0.7, ge=0)  # a ceiling for log_loss (unbounded), else at most 1
    confidence: float = Field(0.95, gt=0.5, lt=1)
    n_bootstrap: int = Field(2000, ge=100)
    seed: int = Field(42, ge=0, le=2**32 - 1)
    lock_file: str = Field(".epochline-retrain.lock", min_length=1)
    # The logistic regression fitted on the same rows (logged by evaluate) as a floor: a
    # challenger more than baseline_margin below it on `metric` is never promoted.
    require_beats_baseline: StrictBool = True
    baseline_margin: float = Field(0.01, ge=0, lt=1)
    # Above 1: the challenger's model with train.seed, train.seed + 1, …, each judged by
    # the rule above; promoted only if every one of them would be (review/seeds.py).
    seeds: int = Field(1, ge=1, le=SEEDS_MAX)

    @model_validator(mode="after")
    def _floor_in_range(self) -> RetrainParams:
        if self.metric != "log_loss" and self.min_metric > 1:
            raise ValueError(
                f"retrain.min_metric = {self.min_metric} is not allowed for retrain.metric = "
                f"{self.metric}; allowed: 0 to 1 (above 1 only as a log_loss ceiling)"
            )
        return self

    @field_validator("metric", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


class Params(_Section):
    # In params.yaml's order, which is the column order of `dvc exp show`.
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()
    split: SplitParams = SplitParams()
    data: DataParams = DataParams()
    tracking: TrackingParams = TrackingParams()
    retrain: RetrainParams = RetrainParams()

    def flat(self) -> dict[str, Any]:
        """Every key as `section.key`, the way MLflow shows params."""
        return {
            f"{section}.{key}": value
            for section, values in self.model_dump().items()
            for key, value in values.items()
        }


def _section(loc: tuple[Any, ...]) -> type[BaseModel]:
    """The model that holds the key at `loc` (a pydantic error location)."""
    model: type[BaseModel] = Params
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            break
        model = annotation
    return model


_TYPE_NAMES = {"int": "an integer", "float": "a number", "string": "text", "bool": "true/false"}


def _expected_type(error: ErrorDetails) -> str:
    kind = error["type"].split("_")[0]
    if kind in ("model", "dict"):
        return "a mapping of keys"
    name = _TYPE_NAMES.get(kind, kind)
    field = _section(error["loc"][:-1]).model_fields.get(str(error["loc"][-1]))
    nullable = field is not None and type(None) in get_args(field.annotation)
    return f"{name} or null" if nullable else name


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML follows YAML 1.1, where `1e-3` is a string and `yes`/`no` are booleans; YAML
    1.2 (and DVC, which reads params.yaml with ruamel) reads a float and two strings."""


_BOOL = "tag:yaml.org,2002:bool"
_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)[eE][-+]?\d+$"),
    list("-+0123456789."),
)


_UNION_TYPES = {"bool": "true/false", "int": "an integer", "str": "text"}


def _describe(error: ErrorDetails, path: Path) -> str:
    loc = error["loc"]
    if loc and str(loc[-1]) in _UNION_TYPES:  # a union names the member that failed last
        kinds = " or ".join(_UNION_TYPES.values())
        key = ".".join(str(part) for part in loc[:-1])
        return f"{path}: {key} = {error.get('input')!r} has the wrong type; allowed: {kinds}"
    key = ".".join(str(part) for part in loc)
    value = error.get("input")
    kind = error["type"]
    if isinstance(value, dict) and kind == "value_error":  # a rule across keys of a section
        return f"{path}: {error['msg'].removeprefix('Value error, ')}"
    if kind == "extra_forbidden":
        allowed = ", ".join(_section(error["loc"][:-1]).model_fields)
        return f"{path}: unknown key '{key}'; allowed: {allowed}"
    if kind.endswith(("_type", "_parsing")):
        return f"{path}: {key} = {value!r} has the wrong type; allowed: {_expected_type(error)}"
    allowed = error["msg"].removeprefix("Input should be ").removeprefix("Value error, ")
    return f"{path}: {key} = {value!r} is not allowed; allowed: {allowed}"


def parse_params(raw: Any, path: Path = PARAMS_FILE) -> Params:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise UserError(_describe(exc.errors()[0], path)) from None


def parse_text(text: str, path: Path = PARAMS_FILE) -> Params:
    """params.yaml's text (as YAML 1.2 reads it), validated."""
    try:
        raw = yaml.load(text, Loader=_Yaml12Loader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML: {first_line(exc)}") from None
    return parse_params(raw, path)


def load_params(path: Path = PARAMS_FILE) -> Params:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UserError(f"{path}: params file not found; run from the repo root") from None
    return parse_text(text, path)
