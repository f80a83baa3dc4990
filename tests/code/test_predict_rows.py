"""The checks on rows handed to `epochline predict`: features only, extra columns pass."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from epochline.errors import UserError
from epochline.predicting import output_table
from epochline.schema import validate_features

FEATURES = ["x0", "x1"]


def rows(**columns: list[object]) -> pd.DataFrame:
    return pd.DataFrame({"x0": [0.5, 1.2], "x1": [3, 4], **columns})


def test_rows_with_extra_columns_pass_with_float_features() -> None:
    checked = validate_features(rows(label=[0, 1], id=["a", "b"]), "in.csv", FEATURES)
    assert checked["x1"].dtype == np.float64
    assert list(checked.columns) == ["x0", "x1", "label", "id"]


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (pd.DataFrame({"x0": [1.0]}), "missing column 'x1'"),
        (rows(x1=["3", "abc"]), "column 'x1' is not numeric (value 'abc' at row 2)"),
        (rows(x0=[np.nan, 1.0]), "column 'x0' has a missing value (NaN) at row 1"),
        (rows(x0=[1.0, np.inf]), "column 'x0' has inf at row 2"),
        (pd.DataFrame({"x0": [], "x1": []}), "has no rows to score"),
    ],
)
def test_bad_rows_get_one_line_naming_file_column_and_row(
    frame: pd.DataFrame, expected: str
) -> None:
    with pytest.raises(UserError) as caught:
        validate_features(frame, "in.csv", FEATURES)
    message = str(caught.value)
    assert message.startswith("in.csv: ") and expected in message
    assert "\n" not in message


def test_output_keeps_the_id_and_names_columns_after_the_label() -> None:
    answers = pd.DataFrame({"probability": [0.2, 0.9], "label": [0, 1]})
    out = output_table(rows(label=[0, 1], id=["a", "b"]), answers, "label", "id")
    assert list(out.columns) == ["id", "label_probability", "label_predicted"]
    assert out["id"].tolist() == ["a", "b"] and out["label_predicted"].tolist() == [0, 1]


def test_output_numbers_rows_like_error_messages_when_there_is_no_id() -> None:
    answers = pd.DataFrame({"probability": [0.2, 0.9], "label": [0, 1]})
    # An input column called `row` is not mistaken for the row number.
    out = output_table(rows(row=[7, 7]), answers, "churned", None)
    assert list(out.columns) == ["row", "churned_probability", "churned_predicted"]
    assert out["row"].tolist() == [1, 2]
