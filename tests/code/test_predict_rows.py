"""The checks on rows handed to `epochline predict`: features only, extra columns pass."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from epochline.core.errors import UserError
from epochline.serving.predict import model_rows, output_table

INPUTS = [("x0", "double"), ("x1", "double"), ("island", "string")]


def rows(**columns: list[object]) -> pd.DataFrame:
    return pd.DataFrame({"x0": [0.5, 1.2], "x1": [3, 4], "island": ["Dream", None], **columns})


def test_rows_take_the_models_columns_numbers_as_float_categories_as_text() -> None:
    checked = model_rows(rows(label=[0, 1], id=["a", "b"]), "in.csv", INPUTS)
    assert list(checked.columns) == ["x0", "x1", "island"]
    assert checked["x1"].dtype == np.float64
    assert checked["island"].tolist()[0] == "Dream" and pd.isna(checked["island"].iloc[1])


def test_gaps_in_numbers_and_new_categories_are_scored() -> None:
    checked = model_rows(rows(x0=[np.nan, 1.0], island=["3", "Biscoe"]), "in.csv", INPUTS)
    assert np.isnan(checked["x0"].iloc[0])
    assert checked["island"].tolist() == ["3", "Biscoe"]


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (pd.DataFrame({"x0": [1.0]}), "missing column 'x1'"),
        (rows(x1=["3", "abc"]), "column 'x1' is numeric in the model's input, here it holds text"),
        (rows(x0=[1.0, np.inf]), "column 'x0' has inf at row 2"),
        (pd.DataFrame({"x0": [], "x1": []}), "has no rows to score"),
    ],
)
def test_bad_rows_get_one_line_naming_file_column_and_row(
    frame: pd.DataFrame, expected: str
) -> None:
    with pytest.raises(UserError) as caught:
        model_rows(frame, "in.csv", INPUTS)
    message = str(caught.value)
    assert message.startswith("in.csv: ") and expected in message, message
    assert "\n" not in message


def test_output_keeps_the_id_and_names_the_class_as_the_data_does() -> None:
    answers = pd.DataFrame({"probability": [0.2, 0.9], "label": [0, 1], "class": [0, 1]})
    out = output_table(rows(label=[0, 1], id=["a", "b"]), answers, "label", "id")
    assert list(out.columns) == ["id", "label_probability", "label_predicted"]
    assert out["id"].tolist() == ["a", "b"] and out["label_predicted"].tolist() == [0, 1]


def test_output_numbers_rows_like_error_messages_when_there_is_no_id() -> None:
    answers = pd.DataFrame({"probability": [0.2, 0.9], "label": [0, 1]})
    # An input column called `row` is not mistaken for the row number.
    out = output_table(rows(row=[7, 7]), answers, "churned", None)
    assert list(out.columns) == ["row", "churned_probability", "churned_predicted"]
    assert out["row"].tolist() == [1, 2]
