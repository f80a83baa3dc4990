"""The served model's encoding takes columns in the types people hold them (fast, no MLflow
run): ints, uints, bools and pandas' nullable types for numbers, and numbers, text, objects
or pandas categories for categories, with the same matrix for the same values. The
signature lets them through; predict hands such a model its columns as they are."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow.types.schema import AnyType

from epochline.serving.model_code import InputError, design
from epochline.serving.predict import model_rows
from epochline.serving.scoring import ANY
from epochline.tracking.store import input_kinds, model_signature

FEATURES = [
    {"name": "mass", "kind": "numeric", "fill": 4000.0, "indicator": True},
    {"name": "year", "kind": "categorical", "categories": ["2007", "2008", "2009"]},
]
MASS = pd.Series([3750.0, 5200.0, np.nan, 4100.0, 3000.0])  # as the data stages hold it
YEAR = pd.Series([2007, 2009, 2008, 2031, 2007])  # 2031: a year never seen in training
NUMBER_TYPES = ["int16", "int32", "int64", "uint16", "uint32", "uint64", "float32", "float64",
                "Int64", "UInt32", "Float64", "Float32"]  # fmt: skip


def rows(mass: pd.Series = MASS, year: pd.Series = YEAR) -> pd.DataFrame:
    return pd.DataFrame({"mass": mass, "year": year})


def plain() -> np.ndarray:
    return design(FEATURES, rows(year=YEAR.astype(str)))


def test_the_plain_matrix_fills_the_gap_and_puts_unseen_years_in_other() -> None:
    matrix = plain()
    assert matrix[2, :2].tolist() == [4000.0, 1.0]  # the fill, and the gap indicator
    assert matrix[3, 2:].tolist() == [0, 0, 0, 0, 1]  # 2031: <other>


@pytest.mark.parametrize("dtype", NUMBER_TYPES)
def test_a_number_column_of_any_type_makes_the_matrix_of_its_values(dtype: str) -> None:
    nullable = dtype[0].isupper()
    mass = MASS if nullable else MASS.fillna(4000.0)
    expected = design(FEATURES, rows(mass, YEAR.astype(str)))
    typed = rows(mass.astype(dtype), YEAR.astype(str))
    assert typed["mass"].dtype == pd.Series(dtype=dtype).dtype
    assert np.array_equal(design(FEATURES, typed), expected)


@pytest.mark.parametrize("dtype", ["int8", "uint8", "bool", "boolean", "object"])
def test_small_and_boolean_number_columns_read_as_their_values(dtype: str) -> None:
    values = pd.Series([1, 0, None, 1, 0] if dtype in ("boolean", "object") else [1, 0, 1, 1, 0])
    expected = design(FEATURES, rows(values.astype(np.float64), YEAR.astype(str)))
    typed = rows(values.astype(dtype) if dtype != "bool" else values.astype(bool), YEAR)
    assert np.array_equal(design(FEATURES, typed), expected)


@pytest.mark.parametrize("dtype", ["int64", "Int64", "float64", "str", "object", "category"])
def test_a_category_column_of_any_type_makes_the_matrix_of_its_text(dtype: str) -> None:
    typed = rows(year=YEAR.astype(dtype))
    assert np.array_equal(design(FEATURES, typed), plain())


@pytest.mark.parametrize("dtype", ["object", "str", "category"])
def test_text_in_a_number_column_is_one_line_naming_column_value_and_row(dtype: str) -> None:
    mass = pd.Series(["3750", "4100", "heavy", None, "3000"], dtype=dtype)
    with pytest.raises(InputError) as caught:
        design(FEATURES, rows(mass))
    assert str(caught.value) == (
        "column 'mass' has 'heavy' at row 3; allowed: finite numbers or null"
    )


def test_the_signature_takes_each_input_in_any_type_and_declares_the_answers() -> None:
    example = rows(year=YEAR.astype(str))
    answers = pd.DataFrame({"probability": [0.5] * 5, "label": [1] * 5, "class": ["M"] * 5})
    signature = model_signature(example, answers)
    assert signature.inputs is not None and signature.outputs is not None
    inputs = signature.inputs.inputs
    assert [c.name for c in inputs] == ["mass", "year"]
    assert all(isinstance(c.type, AnyType) and c.required for c in inputs)
    assert [c.type.name for c in signature.outputs.inputs] == ["double", "long", "string"]
    assert input_kinds(example) == {"mass": "number", "year": "category"}


def test_predict_hands_a_model_of_any_types_its_columns_as_they_are() -> None:
    table = rows(MASS.astype("Int64"), YEAR.astype("category")).assign(label=[0, 1, 0, 1, 0])
    checked = model_rows(table, "in.parquet", [("mass", ANY), ("year", ANY)])
    assert list(checked.columns) == ["mass", "year"]
    assert checked["mass"].dtype == "Int64" and checked["year"].dtype == "category"
