"""A user's own table as it really comes: categories, gaps, text labels, columns that are
not features, and every way such a table goes wrong (one line naming file, column, row)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from epochline.core.errors import UserError
from epochline.core.params import DataParams, SplitParams, parse_text
from epochline.data.preprocessing import Preprocessor
from epochline.data.schema import CATEGORICAL, NUMERIC
from epochline.data.sources import load_parts, load_raw
from epochline.data.splitting import assign, key_columns
from epochline.serving.model_code import answer
from epochline.training import model

SOURCE = "data/external/animals.csv"


def _table(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    mass = rng.normal(4000, 500, n).round()
    table = pd.DataFrame({
        "island": rng.choice(["Biscoe", "Dream", "Torgersen"], n),
        "mass": mass,
        "bill": rng.normal(40, 4, n).round(1),
        "seen": [f"2024-03-{1 + i % 28:02d}" for i in range(n)],
        "tag": np.arange(n) % 4,
        "sex": np.where(mass > 4000, "M", "F"),
    })  # fmt: skip
    table.loc[3, "bill"] = np.nan
    table.loc[5, "island"] = None
    return table


def _params(**overrides: Any) -> DataParams:
    defaults: dict[str, Any] = {"source": SOURCE, "label_column": "sex", "positive_class": "M",
                                "exclude": ["seen"]}  # fmt: skip
    return DataParams(**{**defaults, **overrides})


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "external").mkdir(parents=True)
    (tmp_path / "data" / "incoming").mkdir()
    return tmp_path


def _write(df: pd.DataFrame, path: str = SOURCE) -> None:
    df.to_csv(path, index=False)


def _error(params: DataParams) -> str:
    with pytest.raises(UserError) as caught:
        load_raw(params)
    message = str(caught.value)
    assert "\n" not in message, message
    return message


# --- what a good table becomes ----------------------------------------------------------


def test_kinds_are_inferred_and_text_labels_coded_by_the_named_class(workdir: Path) -> None:
    _write(_table())
    schema, parts = load_parts(_params(categorical=["tag"]))
    kinds = {f.name: f.kind for f in schema.features}
    assert kinds == {"island": CATEGORICAL, "mass": NUMERIC, "bill": NUMERIC,
                     "tag": CATEGORICAL}  # fmt: skip
    assert schema.classes == ("F", "M")
    raw = parts[0][1]
    assert raw["sex"].tolist() == (_table()["sex"] == "M").astype(int).tolist()
    assert raw["tag"].tolist()[:4] == ["0", "1", "2", "3"]  # declared categories become text
    assert "seen" in raw.columns  # excluded: kept for the row's key, not a feature


@pytest.mark.parametrize(
    ("labels", "positive", "expected"),
    [(["yes", "no"], "yes", ("no", "yes")), ([True, False], True, (False, True)),
     ([1, 0], 1, (0, 1)), (["M", "B"], "B", ("M", "B"))],
)  # fmt: skip
def test_labels_may_be_words_booleans_or_numbers(
    workdir: Path, labels: list[Any], positive: Any, expected: tuple[Any, Any]
) -> None:
    table = _table().assign(sex=np.resize(labels, 120))
    _write(table)
    schema, _ = load_parts(_params(positive_class=positive))
    assert schema.classes == expected


def test_yes_in_params_is_the_word_not_a_boolean() -> None:
    # YAML 1.1 reads `yes` as true; DVC and epochline read params.yaml as YAML 1.2.
    assert parse_text("data: {positive_class: yes}").data.positive_class == "yes"


def test_features_list_picks_columns(workdir: Path) -> None:
    _write(_table())
    schema, _ = load_parts(_params(exclude=[], features=["mass", "island"]))
    assert schema.feature_names == ["island", "mass"]


def test_split_of_old_rows_stays_when_a_batch_adds_gaps_and_new_categories(workdir: Path) -> None:
    base = _table().drop(columns="seen").assign(bill=lambda t: t["bill"].fillna(40.0))
    _write(base)
    params = _params(exclude=[])
    before = load_raw(params)
    batch = _table(30, seed=1).drop(columns="seen")
    batch.loc[0, ["bill", "island"]] = [np.nan, "Atlantis"]  # a gap where base had none
    _write(batch, "data/incoming/batch-0001.csv")
    after = load_raw(params)
    split = SplitParams()
    keys = key_columns(list(before.columns), None)
    old = assign(before, keys, split)
    np.testing.assert_array_equal(assign(after, keys, split)[: len(before)], old)
    assert after["bill"].dtype == before["bill"].dtype == np.float64


def test_preprocessing_fills_indicates_and_gives_unseen_categories_a_slot(workdir: Path) -> None:
    _write(_table())
    schema, parts = load_parts(_params())
    raw = parts[0][1]
    pre = Preprocessor.fit(raw, schema, 20, "train")
    specs = {f["name"]: f for f in pre.features}
    assert specs["bill"]["indicator"] and specs["bill"]["fill"] == raw["bill"].median()
    assert not specs["mass"]["indicator"]
    assert specs["island"]["categories"] == ["Biscoe", "Dream", "Torgersen"]
    assert "island=<missing>" in pre.columns and "island=<other>" in pre.columns
    scaled = pre.transform(raw)
    # Numbers standardised; a gap's indicator and a category's slot stay 0/1.
    assert scaled["bill"].mean() == pytest.approx(0, abs=1e-12)
    assert scaled["bill"].std(ddof=0) == pytest.approx(1)
    np.testing.assert_array_equal(scaled["bill<missing>"], raw["bill"].isna().astype(float))
    np.testing.assert_array_equal(scaled["island=<missing>"], raw["island"].isna().astype(float))
    assert raw["bill"].isna()[3] and raw["island"].isna()[5]


def test_an_input_the_same_in_every_training_row_is_0_there_and_marked_unused(
    workdir: Path,
) -> None:
    _write(_table().assign(island="Biscoe", bill=lambda t: t["bill"].fillna(40.0)))
    schema, parts = load_parts(_params())
    raw = parts[0][1]
    pre = Preprocessor.fit(raw, schema, 20, "train")
    scaled = pre.transform(raw)
    # A category every row has: its slot is 1 in every row, centred to 0 and not used.
    assert (scaled["island=Biscoe"] == 0.0).all()
    column = pre.columns.index("island=Biscoe")
    assert not pre.varies[column] and pre.varies[pre.columns.index("bill")]
    # Served, an unseen island is 0 in that slot minus its centre: -1, where the weights are 0.
    unseen = pre.transform(raw.head(1).assign(island="Atlantis"))
    assert unseen.loc[unseen.index[0], "island=Biscoe"] == -1.0


def test_fit_on_masked_rows_and_transform_by_slices_match_the_whole_table(
    workdir: Path,
) -> None:
    # What normalize relies on: fitted column by column through a mask, written a row
    # group at a time, and still what the whole table of training rows gives.
    _write(_table(300))
    schema, parts = load_parts(_params(categorical=["tag"]))
    raw = parts[0][1]
    is_train = np.arange(len(raw)) % 3 != 0
    masked = Preprocessor.fit(raw, schema, 20, "train", is_train)
    assert masked == Preprocessor.fit(raw[is_train], schema, 20, "train")
    whole = masked.transform(raw)
    sliced = pd.concat([masked.transform(raw.iloc[i : i + 64]) for i in range(0, len(raw), 64)])
    pd.testing.assert_frame_equal(sliced, whole, check_exact=True)
    as_float32 = masked.transform(raw, np.float32)
    assert (as_float32.dtypes == np.float32).all()
    pd.testing.assert_frame_equal(as_float32, whole.astype(np.float32), check_exact=True)


def test_max_categories_caps_with_a_warning(
    workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    table = _table(2000).assign(island=[f"i{i}" for i in range(2000)])
    _write(table)
    schema, parts = load_parts(_params())
    with caplog.at_level(logging.WARNING):
        pre = Preprocessor.fit(parts[0][1], schema, 5, "train")
    assert len(pre.features[0]["categories"]) == 5
    assert "2000 distinct values" in caplog.text and "'<other>'" in caplog.text


def _trained(raw: pd.DataFrame, schema: Any) -> tuple[model.Classifier, dict[str, Any]]:
    pre = Preprocessor.fit(raw, schema, 20, "train")
    net = model.build(len(pre.columns), 4, 0)
    net.set_scaler(pre)
    net.silence_unused_inputs(model.inputs_used(pre))
    config = {"features": list(pre.features), "columns": pre.columns, "threshold": 0.5,
              "classes": list(schema.classes)}  # fmt: skip
    return net, config


def test_served_rows_with_nulls_unseen_categories_and_huge_values_get_finite_answers(
    workdir: Path,
) -> None:
    _write(_table())
    schema, parts = load_parts(_params())
    net, config = _trained(parts[0][1], schema)
    rows = pd.DataFrame({"island": [None, "Atlantis", "Dream"], "mass": [np.nan, 1e308, -1e308],
                         "bill": [None, 40.0, 1e300], "tag": [0.0, 1.0, 2.0]})  # fmt: skip
    out = answer(net.state_dict(), config, rows)
    assert np.isfinite(out["probability"]).all()
    assert set(out["class"]) <= {"F", "M"}


def test_an_unseen_category_adds_nothing(workdir: Path) -> None:
    _write(_table())
    schema, parts = load_parts(_params())
    net, config = _trained(parts[0][1], schema)
    other = config["columns"].index("island=<other>")
    assert (net.hidden.weight[:, other] == 0).all()


# --- bad input: one line, naming what, where, and what is allowed -------------------------


def test_a_third_label_value_names_file_row_and_value(workdir: Path) -> None:
    table = _table()
    table.loc[7, "sex"] = "X"
    _write(table)
    message = _error(_params())
    assert message.startswith(SOURCE) and "third value ('X' at row 8)" in message
    assert "'M' (data.positive_class)" in message


def test_a_positive_class_that_never_occurs(workdir: Path) -> None:
    _write(_table())
    assert "data.positive_class 'male', which never occurs" in _error(
        _params(positive_class="male")
    )


def test_an_all_missing_column(workdir: Path) -> None:
    _write(_table().assign(bill=np.nan))
    message = _error(_params())
    assert "column 'bill' is empty" in message and "data.exclude" in message


def test_a_date_column_left_in_the_features(workdir: Path) -> None:
    _write(_table())
    message = _error(_params(exclude=[]))
    assert "column 'seen' holds dates" in message and "data.exclude: [seen]" in message


def test_free_text_is_refused(workdir: Path) -> None:
    _write(_table().assign(note="arrived late in the evening"))
    assert "column 'note' holds free text" in _error(_params())


def test_mixed_numbers_and_text(workdir: Path) -> None:
    table = _table().astype({"mass": object})
    table.loc[9, "mass"] = "heavy"
    _write(table)
    message = _error(_params())
    assert "column 'mass' mixes numbers and text" in message and "'heavy' at row 10" in message


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda t: t.assign(extra=1), "column 'extra' is not in the base table"),
        (lambda t: t.drop(columns="bill"), "column 'bill' of the base table is missing"),
        (lambda t: t.assign(island=7), "column 'island' holds text categories in the base table, "
                                       "here number (7 at row 1)"),
        (lambda t: t.assign(mass="heavy"), "column 'mass' is numeric in the base table, here it "
                                           "holds text ('heavy' at row 1)"),
    ],
    ids=["new column", "missing column", "text became numbers", "numbers became text"],
)  # fmt: skip
def test_a_batch_whose_columns_or_kinds_changed(workdir: Path, edit: Any, expected: str) -> None:
    _write(_table())
    _write(edit(_table(20, seed=3)), "data/incoming/batch-0001.csv")
    message = _error(_params())
    assert message.startswith("data/incoming/batch-0001.csv: ") and expected in message


def test_semicolons_and_latin1_are_named(workdir: Path) -> None:
    _table().to_csv(SOURCE, index=False, sep=";")
    assert "looks semicolon-separated" in _error(_params())
    Path(SOURCE).write_bytes("island,sex\nVolcán,M\n".encode("latin-1"))
    message = _error(_params())
    assert "is not UTF-8" in message and "0xe1" in message


def test_a_range_that_overflows_scaling(workdir: Path) -> None:
    table = _table()
    table.loc[[0, 1], "mass"] = [1e308, -1e308]
    _write(table)
    message = _error(_params())
    assert "column 'mass' spans -1e+308 to 1e+308" in message and "overflows" in message


@pytest.mark.parametrize("folder", ["/tmp/incoming", "../incoming", "data/../../x"])
def test_incoming_dir_must_be_inside_the_repository(folder: str) -> None:
    with pytest.raises(UserError) as caught:
        parse_text(f"data: {{incoming_dir: '{folder}'}}")
    assert "data.incoming_dir" in str(caught.value) and "inside the repository" in str(caught.value)
