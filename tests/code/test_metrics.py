"""The test metrics and the ROC/confusion data behind the plots, on rows small enough to
count by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from epochline.evaluation import metrics

# Six rows: two true positives, one false positive, one false negative, two true negatives.
Y = np.array([1, 1, 0, 1, 0, 0])
PROB = np.array([0.9, 0.8, 0.7, 0.4, 0.2, 0.1])
LABEL = (PROB >= 0.5).astype(int)


def test_the_six_metrics_are_the_counted_ones() -> None:
    got = metrics.classification_metrics(Y, PROB, LABEL)
    assert got["accuracy"] == pytest.approx(4 / 6)
    assert got["precision"] == pytest.approx(2 / 3)
    assert got["recall"] == pytest.approx(2 / 3)
    assert got["f1"] == pytest.approx(2 / 3)
    # Pairs (positive, negative) ranked right: 8 of 9 (0.4 is below 0.7).
    assert got["roc_auc"] == pytest.approx(8 / 9)
    expected_loss = -np.mean(Y * np.log(PROB) + (1 - Y) * np.log(1 - PROB))
    assert got["log_loss"] == pytest.approx(expected_loss)
    # Average precision: precision at each positive, ranked: 1/1, 2/2, (0.4 is 3rd of 4) 3/4.
    assert got["pr_auc"] == pytest.approx((1 + 1 + 3 / 4) / 3)
    # Recall of each class: positives 2/3, negatives 2/3.
    assert got["balanced_accuracy"] == pytest.approx(2 / 3)
    assert got["positive_rate"] == 0.5 and got["predicted_positive_rate"] == 0.5
    assert all(type(v) is float for v in got.values())  # JSON- and MLflow-ready


def test_a_model_answering_the_majority_only_is_seen_for_what_it_is() -> None:
    # 1 positive in 10: answering 0 always is 90 % accurate, and balanced accuracy says 0.5.
    y = np.array([0] * 9 + [1])
    always = np.zeros(10, dtype=int)
    got = metrics.classification_metrics(y, np.full(10, 0.1), always)
    assert got["accuracy"] == pytest.approx(0.9) and got["balanced_accuracy"] == 0.5
    assert got["predicted_positive_rate"] == 0.0 and got["positive_rate"] == pytest.approx(0.1)
    assert got["pr_auc"] == pytest.approx(0.1)  # no ranking: the positive rate
    assert metrics.never_predicted(always) == 1
    assert metrics.never_predicted(np.ones(3, dtype=int)) == 0
    assert metrics.never_predicted(LABEL) is None


def test_no_predicted_positive_gives_zero_precision_not_a_warning() -> None:
    nothing = np.zeros(len(Y), dtype=int)
    got = metrics.classification_metrics(Y, PROB, nothing)
    assert got["precision"] == 0.0 and got["recall"] == 0.0 and got["f1"] == 0.0


def test_confusion_has_both_classes_even_when_one_never_occurs() -> None:
    assert metrics.confusion(Y, LABEL) == [[2, 1], [1, 2]]
    assert metrics.confusion(np.zeros(3, int), np.zeros(3, int)) == [[3, 0], [0, 0]]


def test_roc_points_run_corner_to_corner_and_hold_no_infinity() -> None:
    points = metrics.roc_points(Y, PROB)
    assert (points[0]["fpr"], points[0]["tpr"]) == (0.0, 0.0)
    assert (points[-1]["fpr"], points[-1]["tpr"]) == (1.0, 1.0)
    assert all(math.isfinite(p["threshold"]) and p["threshold"] <= 1.0 for p in points)
    json.dumps(points, allow_nan=False)  # dvc plots reads it as strict JSON


def test_summary_rounds_to_six_places_and_keeps_the_matrix() -> None:
    values = {"accuracy": 2 / 3, "roc_auc": 0.1234567891}
    assert metrics.summary(values, [[1, 0], [0, 1]]) == {
        "accuracy": 0.666667, "roc_auc": 0.123457, "confusion_matrix": [[1, 0], [0, 1]],
    }  # fmt: skip


def test_names_are_the_metrics_in_their_order() -> None:
    # metrics.json's scores and the run's test_ metrics, as retrain/complete.py looks for them.
    assert tuple(metrics.classification_metrics(Y, PROB, LABEL)) == metrics.NAMES
