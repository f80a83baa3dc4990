"""Test metrics and the data behind the ROC and confusion plots, via scikit-learn."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics as skm


def classification_metrics(
    y: np.ndarray, probability: np.ndarray, label: np.ndarray
) -> dict[str, float]:
    """The six test metrics, keyed by their bare names (`accuracy`, not `test_accuracy`)."""
    return {
        "accuracy": float(skm.accuracy_score(y, label)),
        "precision": float(skm.precision_score(y, label, zero_division=0)),
        "recall": float(skm.recall_score(y, label, zero_division=0)),
        "f1": float(skm.f1_score(y, label, zero_division=0)),
        "roc_auc": float(skm.roc_auc_score(y, probability)),
        "log_loss": float(skm.log_loss(y, probability, labels=[0, 1])),
    }


def roc_points(y: np.ndarray, probability: np.ndarray) -> list[dict[str, float]]:
    fpr, tpr, thresholds = skm.roc_curve(y, probability)
    # roc_curve's first threshold is +inf, which JSON cannot hold.
    thresholds = np.minimum(thresholds, 1.0)
    return [
        {"fpr": float(f), "tpr": float(t), "threshold": float(th)}
        for f, t, th in zip(fpr, tpr, thresholds, strict=True)
    ]


def confusion(y: np.ndarray, label: np.ndarray) -> list[list[int]]:
    return skm.confusion_matrix(y, label, labels=[0, 1]).tolist()


def summary(values: dict[str, float], matrix: list[list[int]]) -> dict[str, Any]:
    return {**{k: round(v, 6) for k, v in values.items()}, "confusion_matrix": matrix}
