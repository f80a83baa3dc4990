"""Yardsticks for the network on the pipeline's own split: the majority class, and a
scikit-learn logistic regression fitted on the same training rows with the same kind of
preprocessing (median fill plus gap indicators, one-hot with a cap, scaling)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from epochline.core import paths
from epochline.core.files import read_json, read_parquet
from epochline.core.params import Params
from epochline.data import splitting
from epochline.data.schema import NUMERIC, Schema
from epochline.evaluation import metrics


@dataclass(frozen=True)
class Yardstick:
    name: str
    accuracy: float
    roc_auc: float


def logistic_regression(schema: Schema, max_categories: int) -> object:
    numeric = [f.name for f in schema.features if f.kind == NUMERIC]
    categorical = [f.name for f in schema.features if f.kind != NUMERIC]
    columns = ColumnTransformer([
        ("numeric", make_pipeline(SimpleImputer(strategy="median", add_indicator=True),
                                  StandardScaler()), numeric),
        ("categorical", make_pipeline(
            SimpleImputer(strategy="constant", fill_value="<missing>"),
            OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=max_categories + 1),
        ), categorical),
    ])  # fmt: skip
    return make_pipeline(columns, LogisticRegression(max_iter=5000))


def _as_sklearn(rows: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    # scikit-learn's imputers want object columns with np.nan for missing text.
    out = rows[schema.feature_names].copy()
    for f in schema.features:
        if f.kind != NUMERIC:
            out[f.name] = out[f.name].astype(object).where(out[f.name].notna(), np.nan)
    return out


def yardsticks(
    train: pd.DataFrame, test: pd.DataFrame, schema: Schema, max_categories: int
) -> list[Yardstick]:
    """Majority class and logistic regression, fitted on `train`, scored on `test`."""
    y_train, y_test = train[schema.label].to_numpy(), test[schema.label].to_numpy()
    majority = int(y_train.mean() >= 0.5)
    constant = np.full(len(y_test), float(majority))
    model = logistic_regression(schema, max_categories)
    model.fit(_as_sklearn(train, schema), y_train)  # type: ignore[attr-defined]
    prob = model.predict_proba(_as_sklearn(test, schema))[:, 1]  # type: ignore[attr-defined]
    found = []
    for name, p in (("majority class", constant), ("logistic regression", prob)):
        values = metrics.classification_metrics(y_test, p, (p >= 0.5).astype(np.int64))
        found.append(Yardstick(name, values["accuracy"], values["roc_auc"]))
    return found


def table(rows: list[Yardstick], network: dict[str, float], n_test: int) -> str:
    """Markdown: each yardstick and the pipeline's network on the same test rows."""
    lines = [f"| model (test rows: {n_test}) | accuracy | ROC AUC |", "|---|---|---|"]
    lines += [f"| {y.name} | {y.accuracy:.4f} | {y.roc_auc:.4f} |" for y in rows]
    lines.append(f"| epochline network | {network['accuracy']:.4f} | {network['roc_auc']:.4f} |")
    return "\n".join(lines)


def against_pipeline(params: Params) -> str:
    """The yardsticks on the outputs of the last `dvc repro`, beside reports/metrics.json."""
    raw = read_parquet(paths.RAW, "raw table")
    schema = Schema.from_dict(read_json(paths.SCHEMA, "schema"))
    is_train = splitting.is_train(raw, schema.id_column, params.split)
    test = read_parquet(paths.TEST, "test table")
    found = yardsticks(raw[is_train], test, schema, params.data.max_categories)
    return table(found, read_json(paths.METRICS, "test metrics"), len(test))
