"""Yardsticks for the network, on its own split and its own inputs: the majority class, a
scikit-learn logistic regression and (for `epochline baselines`) a gradient-boosted model.

The models are fitted on the training rows of data/split as the network sees them (gap
fills with indicators, one-hot categories capped by data.max_categories, standardised):
the only difference from the network is the model. evaluate logs the majority class and
the logistic regression in every run; the boosted model costs more and is the tool's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from epochline.core import paths
from epochline.core.files import read_json, read_parquet
from epochline.core.params import Params
from epochline.data import tables
from epochline.data.preprocessing import Preprocessor
from epochline.evaluation import metrics, threshold

# Above this many training rows the fitted yardsticks learn from this many, spread over the
# table (tables.sample_rows): a logistic regression on tens of inputs has learnt what it can
# from 100 000 rows, and evaluate's cost stops growing with the table (README: Performance).
FIT_ROWS = 100_000
MAJORITY, LOGISTIC, BOOSTED = "majority class", "logistic regression", "gradient boosting"
# The prefix of each yardstick's metrics in a run: baseline_lr_roc_auc, ...
RUN_PREFIX = {MAJORITY: "baseline_majority_", LOGISTIC: "baseline_lr_", BOOSTED: "baseline_hgb_"}


@dataclass(frozen=True)
class Yardstick:
    name: str
    values: dict[str, float]  # as metrics.classification_metrics names them
    threshold: float | None  # the decision threshold its labels used; None: a constant answer


@dataclass(frozen=True)
class Inputs:
    """Network inputs and labels of the training, validation and test rows."""

    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]


def _inputs(frame: pd.DataFrame, columns: list[str], label: str) -> tuple[np.ndarray, np.ndarray]:
    return frame[columns].to_numpy(dtype=np.float64), frame[label].to_numpy()


def pipeline_inputs(preprocessor: Preprocessor, label: str, test: pd.DataFrame) -> Inputs:
    """The split's training (sampled, see FIT_ROWS) and validation inputs, and the test
    rows (raw, as evaluate holds them) turned into inputs by the same preprocessing."""
    columns = [*preprocessor.columns, label]
    train = tables.sample_rows(paths.TRAIN, "train table", columns, FIT_ROWS)
    # The thresholds are chosen on validation rows: as many as the yardsticks learnt from.
    val = tables.sample_rows(paths.VAL, "validation table", columns, FIT_ROWS)
    test_inputs = preprocessor.transform(test)
    return Inputs(
        _inputs(train, preprocessor.columns, label),
        _inputs(val, preprocessor.columns, label),
        (test_inputs.to_numpy(dtype=np.float64), test[label].to_numpy()),
    )


def _fitted(name: str, x: np.ndarray, y: np.ndarray) -> object:
    if name == LOGISTIC:
        model: object = LogisticRegression(max_iter=5000)
    else:  # `epochline baselines` only: evaluate does not pay for importing it
        from sklearn.ensemble import HistGradientBoostingClassifier

        model = HistGradientBoostingClassifier(random_state=0)
    model.fit(x, y)  # type: ignore[attr-defined]
    return model


def yardsticks(
    inputs: Inputs, rule: float | str, names: tuple[str, ...] = (MAJORITY, LOGISTIC)
) -> list[Yardstick]:
    """Each yardstick fitted on the training inputs and scored on the test rows; its
    threshold comes from `rule` (evaluate.threshold) on its own validation answers."""
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = inputs.train, inputs.val, inputs.test
    found = []
    for name in names:
        if name == MAJORITY:
            rate = float(np.mean(y_train)) if len(y_train) else 0.5
            prob = np.full(len(y_test), rate)
            label = np.full(len(y_test), int(rate >= 0.5), dtype=np.int64)
            found.append(Yardstick(name, metrics.classification_metrics(y_test, prob, label), None))
            continue
        if len(np.unique(y_train)) < 2:
            continue  # one class in training: nothing for a model to fit
        model = _fitted(name, x_train, y_train)
        p_val = model.predict_proba(x_val)[:, 1]  # type: ignore[attr-defined]
        cut = threshold.choose(rule, y_val > 0, p_val).value
        prob = model.predict_proba(x_test)[:, 1]  # type: ignore[attr-defined]
        label = (prob >= cut).astype(np.int64)
        found.append(Yardstick(name, metrics.classification_metrics(y_test, prob, label), cut))
    return found


def report_key(name: str) -> str:
    """A yardstick's key in reports/verdict.json's "baselines": logistic_regression, ..."""
    return name.replace(" ", "_")


def report(found: list[Yardstick]) -> dict[str, dict[str, float]]:
    """verdict.json's "baselines": each yardstick's test metrics, as metrics.json rounds them."""
    return {report_key(y.name): metrics.rounded(y.values) for y in found}


def run_metrics(found: list[Yardstick]) -> dict[str, float]:
    """baseline_majority_accuracy, baseline_lr_roc_auc, ...: as evaluate logs them."""
    return {f"{RUN_PREFIX[y.name]}{k}": v for y in found for k, v in y.values.items()}


COLUMNS = ("accuracy", "roc_auc", "pr_auc", "balanced_accuracy", "recall")


def table(rows: list[Yardstick], network: dict[str, float], n_test: int) -> str:
    """Markdown: each yardstick and the pipeline's network on the same test rows."""
    head = " | ".join(c.replace("_", " ") for c in COLUMNS)
    lines = [f"| model (test rows: {n_test}) | {head} | threshold |",
             "|---|" + "---|" * (len(COLUMNS) + 1)]  # fmt: skip

    def line(name: str, values: dict[str, float], cut: float | None) -> str:
        cells = " | ".join(f"{values[c]:.4f}" for c in COLUMNS)
        return f"| {name} | {cells} | {'-' if cut is None else f'{cut:.4f}'} |"

    lines += [line(y.name, y.values, y.threshold) for y in rows]
    lines.append(line("epochline network", network, network.get("threshold")))
    return "\n".join(lines)


def against_pipeline(params: Params) -> str:
    """All three yardsticks on the outputs of the last `dvc repro`, beside the network's
    reports/metrics.json."""
    preprocessor = Preprocessor.from_dict(read_json(paths.PREPROCESSOR, "preprocessing"))
    test = read_parquet(paths.TEST, "test table")
    inputs = pipeline_inputs(preprocessor, params.data.label_column, test)
    found = yardsticks(inputs, params.evaluate.threshold, (MAJORITY, LOGISTIC, BOOSTED))
    return table(found, read_json(paths.METRICS, "test metrics"), len(test))
