"""Scoring raw rows with a logged model (scoring.LoggedModel), as retrain, predict and
compare do: a small real model logged by tracking.log_model into a real SQLite store."""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest

from epochline.core.params import DataParams, Params
from epochline.data.preprocessing import Preprocessor
from epochline.data.sources import load_parts
from epochline.serving.model_code import answer
from epochline.serving.scoring import ANY, LoggedModel
from epochline.tracking import store
from epochline.training import model


def _table(n: int = 80) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    mass = rng.normal(4000, 500, n).round()
    return pd.DataFrame({
        "island": rng.choice(["Biscoe", "Dream"], n),
        "mass": mass,
        "bill": rng.normal(40, 4, n).round(1),
        "sex": np.where(mass > 4000, "M", "F"),
    })  # fmt: skip


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any], pd.DataFrame]:
    """(model URI, checkpoint, raw rows): an untrained net (answers are what matter here)."""
    root = tmp_path_factory.mktemp("scoring")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        (root / "data").mkdir()
        _table().to_csv(root / "data/animals.csv", index=False)
        data = DataParams(source="data/animals.csv", label_column="sex", positive_class="M")
        schema, ((_, raw),) = load_parts(data)
        pre = Preprocessor.fit(raw, schema, 20, "train")
        net = model.build(len(pre.columns), 4, 0)
        net.set_scaler(pre)
        net.silence_unused_inputs(model.inputs_used(pre))
        params = Params(data=data)
        checkpoint = model.checkpoint(net, model.checkpoint_config(params, pre, schema))
        (root / "model.pt").write_bytes(model.checkpoint_bytes(checkpoint))
        rows = raw.drop(columns="sex")
        example = rows.head(5)
        mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")  # put back by tests/conftest.py
        with mlflow.start_run():
            uri = store.log_model(
                root / "model.pt", example, answer(net.state_dict(), checkpoint["config"], example)
            )
    return uri, checkpoint, rows


def test_the_logged_model_answers_as_serving_answers(
    logged: tuple[str, dict[str, Any], pd.DataFrame],
) -> None:
    uri, checkpoint, rows = logged
    scored = LoggedModel(uri).score(rows)
    expected = answer(checkpoint["state_dict"], checkpoint["config"], rows)
    pd.testing.assert_frame_equal(scored.reset_index(drop=True), expected, check_exact=True)
    assert set(scored["class"]) <= {"F", "M"}


def test_it_names_its_inputs_and_takes_only_those_columns(
    logged: tuple[str, dict[str, Any], pd.DataFrame],
) -> None:
    uri, checkpoint, rows = logged
    scoring = LoggedModel(uri)
    names = [name for name, _ in scoring.inputs]
    assert names == [f["name"] for f in checkpoint["config"]["features"]]
    assert all(kind in ("double", "string", ANY) for _, kind in scoring.inputs)
    extra = rows.assign(label="F", note="ignored")[["note", *reversed(rows.columns), "label"]]
    pd.testing.assert_frame_equal(scoring.score(extra), scoring.score(rows), check_exact=True)
