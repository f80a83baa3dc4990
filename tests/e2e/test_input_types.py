"""The logged model takes rows as people hold them: a number column as any integer, float,
bool or nullable type, a category as text, numbers or a pandas category; through pyfunc,
`mlflow models serve` and `epochline predict`, with the same answers for the same values.
One penguins pipeline for the module (its year, flipper and body-mass columns are whole
numbers)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.pyfunc import PyFuncModel

from devtools.servers import serving
from epochline.serving.scoring import LoggedModel
from tests.conftest import run, tool_env, trained_run
from tests.e2e.test_real_tables import own_data_project
from tests.e2e.test_serving import post

pytestmark = pytest.mark.slow

WHOLE = ["flipper_length_mm", "body_mass_g"]  # numeric features holding whole numbers
FEATURES = ["island", "bill_length_mm", "bill_depth_mm", *WHOLE, "sex", "year"]
NUMBER_TYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                "float32", "float64", "Int64", "Float64", "bool"]  # fmt: skip
BAD = "column 'body_mass_g' has 'heavy' at row 2; allowed: finite numbers or null"


@dataclass(frozen=True)
class Penguins:
    project: Path
    uri: str
    model: PyFuncModel  # loaded as a user would, with unpickling refused
    table: pd.DataFrame  # the source table as pandas reads the CSV: year is int64


@pytest.fixture(scope="module")
def penguins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Penguins]:
    project = own_data_project(tmp_path_factory.mktemp("inputs"), "penguins")
    run(["dvc", "repro"], project)
    uri = trained_run(project).data.tags["epochline.model_uri"]
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
            model = mlflow.pyfunc.load_model(uri)
        table = pd.read_csv(project / "data/external/penguins.csv")
        yield Penguins(project, uri, model, table)
    finally:
        mlflow.set_tracking_uri(before)


def whole_rows(penguins: Penguins) -> pd.DataFrame:
    """Rows whose whole-number columns have no gaps: every integer type holds them."""
    return penguins.table.dropna(subset=WHOLE).reset_index(drop=True)[FEATURES]


def held(values: pd.Series, dtype: str) -> pd.Series:
    """The values as float64, changed only where `dtype` cannot hold them: booleans for
    bool, and the last two digits for the 8-bit types."""
    if dtype == "bool":
        return (values > values.median()).astype(np.float64)
    if dtype in ("int8", "uint8"):
        return values % 100
    return values


def test_the_table_has_integer_columns(penguins: Penguins) -> None:
    # Else the tests below would not be testing what they say.
    assert penguins.table["year"].dtype == np.int64
    assert (penguins.table[WHOLE].dropna() % 1 == 0).all().all()


def test_the_signature_names_every_input_and_the_metadata_says_what_each_is(
    penguins: Penguins,
) -> None:
    metadata = penguins.model.metadata
    inputs = metadata.get_input_schema().inputs
    assert [c.name for c in inputs] == FEATURES and all(c.required for c in inputs)
    assert {repr(c.type) for c in inputs} == {"Any"}
    outputs = {c.name: c.type.name for c in metadata.get_output_schema().inputs}
    assert outputs == {"probability": "double", "label": "long", "class": "string"}
    kinds = metadata.metadata["inputs"]
    assert kinds["island"] == kinds["sex"] == kinds["year"] == "category"
    assert kinds["bill_length_mm"] == kinds["body_mass_g"] == "number"


@pytest.mark.parametrize("dtype", NUMBER_TYPES)
def test_a_number_column_of_any_type_gets_the_answers_of_its_float_values(
    penguins: Penguins, dtype: str
) -> None:
    rows = penguins.table[FEATURES] if dtype[0].isupper() else whole_rows(penguins)
    plain = rows.assign(**{c: held(rows[c], dtype) for c in WHOLE})
    typed = plain.assign(**{c: plain[c].astype(dtype) for c in WHOLE})
    assert (typed[WHOLE].dtypes == pd.Series(dtype, WHOLE).astype(object)).all()
    answers = penguins.model.predict(typed)
    pd.testing.assert_frame_equal(answers, penguins.model.predict(plain))
    assert answers["probability"].nunique() > 100  # the rows reach the network
    # epochline's own scoring (evaluate, retrain, predict) gives the same answers.
    pd.testing.assert_frame_equal(LoggedModel(penguins.uri).score(typed), answers)


@pytest.mark.parametrize("dtype", ["int64", "float64", "str", "object", "category"])
def test_a_category_column_of_any_type_gets_the_answers_of_its_text(
    penguins: Penguins, dtype: str
) -> None:
    rows = penguins.table[FEATURES]
    text = rows.assign(year=rows["year"].astype(str))  # as the split tables hold it
    typed = rows.assign(
        year=rows["year"].astype(dtype),
        island=rows["island"].astype("category" if dtype == "category" else object),
    )
    pd.testing.assert_frame_equal(penguins.model.predict(typed), penguins.model.predict(text))


@pytest.mark.parametrize("dtype", ["object", "str", "category"])
def test_a_value_that_is_no_number_is_one_line_naming_column_and_value(
    penguins: Penguins, dtype: str
) -> None:
    rows = whole_rows(penguins).head(3)
    bad = rows.assign(body_mass_g=pd.Series(["3750", "heavy", None], dtype=dtype))
    with pytest.raises(MlflowException) as caught:
        penguins.model.predict(bad)
    assert str(caught.value) == BAD
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"


def test_served_json_takes_integers_text_numbers_nulls_and_unseen_categories(
    penguins: Penguins,
) -> None:
    rows = penguins.table[FEATURES].head(20).copy()
    rows.loc[3, "island"] = "Atlantis"
    expected = penguins.model.predict(rows.astype({"year": str}))
    # pandas writes the whole numbers as 181.0 and gaps as null; a client writes 181.
    records = json.loads(rows.to_json(orient="records"))
    for record in records:
        record.update({c: int(record[c]) for c in WHOLE if record[c] is not None})
    assert any(r["body_mass_g"] is None for r in records)
    assert isinstance(records[0]["year"], int) and isinstance(records[0]["body_mass_g"], int)
    env = tool_env(MLFLOW_TRACKING_URI=f"sqlite:///{penguins.project / 'mlflow.db'}")
    args = ["mlflow", "models", "serve", "-m", penguins.uri, "--env-manager", "local"]
    with serving([*args, "-h", "127.0.0.1", "-p"], penguins.project, env, "/ping") as base:
        served = post(f"{base}/invocations", {"dataframe_records": records})["predictions"]
        split = json.loads(rows.to_json(orient="split", index=False))
        as_split = post(f"{base}/invocations", {"dataframe_split": split})["predictions"]
        records[1]["body_mass_g"] = "heavy"
        with pytest.raises(urllib.error.HTTPError) as refused:
            post(f"{base}/invocations", {"dataframe_records": records})
    answers = pd.DataFrame(served)
    assert answers["class"].tolist() == expected["class"].tolist()
    assert np.array_equal(answers["probability"].to_numpy(), expected["probability"].to_numpy())
    assert pd.DataFrame(as_split).equals(answers)
    assert refused.value.code == 400
    body = json.loads(refused.value.read())
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert body["message"].splitlines()[-1].endswith(BAD), body["message"]


def predict(penguins: Penguins, source: Path, uri: str) -> pd.DataFrame:
    out = source.with_suffix(".out.csv")
    args = ["--input", str(source), "--output", str(out), "--model", uri]
    run(["epochline", "predict", *args], penguins.project)
    return pd.read_csv(out)


def files(penguins: Penguins, folder: Path) -> tuple[Path, Path, pd.DataFrame]:
    """A Parquet file of typed columns (nullable ints, categories) and a CSV of whole rows
    (ints), with pyfunc's answers for the typed file's rows."""
    rows = penguins.table[FEATURES]
    typed = rows.astype({"flipper_length_mm": "Int64", "body_mass_g": "UInt16",
                         "year": "category", "sex": "category"})  # fmt: skip
    typed.to_parquet(folder / "typed.parquet")
    whole = rows[WHOLE].notna().all(axis=1).to_numpy()
    rows[whole].astype({c: "int64" for c in WHOLE}).to_csv(folder / "ints.csv", index=False)
    return folder / "typed.parquet", folder / "ints.csv", penguins.model.predict(rows)


def test_predict_scores_files_of_typed_columns_like_the_model(
    penguins: Penguins, tmp_path: Path
) -> None:
    typed, ints, expected = files(penguins, tmp_path)
    probability = expected["probability"].to_numpy()
    scored = predict(penguins, typed, penguins.uri)
    assert np.array_equal(scored["adelie_probability"].to_numpy(), probability)
    # pandas' CSV parser may read a decimal one bit off its repr: compare with the file as read.
    read = pd.read_csv(ints)
    assert (read[WHOLE].dtypes == np.int64).all() and read["year"].dtype == np.int64
    expected = penguins.model.predict(read.astype({c: np.float64 for c in WHOLE}))
    scored = predict(penguins, ints, penguins.uri)
    assert np.array_equal(scored["adelie_probability"].to_numpy(), expected["probability"])


def test_predict_names_a_value_that_is_no_number_in_one_line(
    penguins: Penguins, tmp_path: Path
) -> None:
    rows = whole_rows(penguins).head(3).astype({"body_mass_g": object})
    rows.loc[1, "body_mass_g"] = "heavy"
    rows.to_csv(tmp_path / "bad.csv", index=False)
    args = ["--input", str(tmp_path / "bad.csv"), "--output", str(tmp_path / "out.csv")]
    done = run(["epochline", "predict", *args, "--model", penguins.uri], penguins.project,
               check=False)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == f"error: {tmp_path / 'bad.csv'}: {BAD}"


@pytest.mark.filterwarnings("ignore:Hint. Inferred schema contains integer")
def test_a_model_logged_with_declared_types_still_loads_and_scores(
    penguins: Penguins, tmp_path: Path
) -> None:
    """Models logged before this declared their inputs `double` and `string`; evaluate,
    retrain and predict still score with them (predict converts the columns for them)."""
    project = penguins.project
    example = pd.read_parquet(project / "data/split/test.parquet")[FEATURES].head(5)
    with mlflow.start_run(experiment_id="0"):
        info = mlflow.pyfunc.log_model(
            name="declared",
            python_model=str(project / "src/epochline/serving/model_code.py"),
            artifacts={"checkpoint": str(project / "models/model.pt")},
            signature=infer_signature(example, penguins.model.predict(example)),
            input_example=example,
            pip_requirements=["mlflow"],
        )
    old = LoggedModel(str(info.model_uri))
    assert dict(old.inputs)["year"] == "string" and dict(old.inputs)["body_mass_g"] == "double"
    test = pd.read_parquet(project / "data/split/test.parquet")
    pd.testing.assert_frame_equal(old.score(test), penguins.model.predict(test[FEATURES]))
    typed, _, expected = files(penguins, tmp_path)
    scored = predict(penguins, typed, str(info.model_uri))
    assert np.array_equal(scored["adelie_probability"], expected["probability"])
