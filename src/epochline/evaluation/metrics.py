"""Test metrics and the data behind the ROC and confusion plots, via scikit-learn."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics as skm

# classification_metrics' keys, in its order: metrics.json's and the run's test_ metrics.
NAMES = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "pr_auc",
         "balanced_accuracy", "positive_rate", "predicted_positive_rate")  # fmt: skip
# Metrics where lower is better; every other one is better higher.
LOWER_IS_BETTER = frozenset({"log_loss"})


def classification_metrics(
    y: np.ndarray, probability: np.ndarray, label: np.ndarray
) -> dict[str, float]:
    """The test metrics, keyed by their bare names (`accuracy`, not `test_accuracy`). For
    rare positives: PR AUC (average precision: the positive rate for a model that cannot
    rank, 1 for a perfect one), balanced accuracy (the mean of the two classes' recalls:
    0.5 for a model that always answers the majority), and the share of rows that are
    positive against the share the model calls positive."""
    return {
        "accuracy": float(skm.accuracy_score(y, label)),
        "precision": float(skm.precision_score(y, label, zero_division=0)),
        "recall": float(skm.recall_score(y, label, zero_division=0)),
        "f1": float(skm.f1_score(y, label, zero_division=0)),
        "roc_auc": float(skm.roc_auc_score(y, probability)),
        "log_loss": float(skm.log_loss(y, probability, labels=[0, 1])),
        "pr_auc": float(skm.average_precision_score(y, probability)),
        "balanced_accuracy": float(_balanced_accuracy(y, label)),
        "positive_rate": float(np.mean(y)),
        "predicted_positive_rate": float(np.mean(label)),
    }


def _balanced_accuracy(y: np.ndarray, label: np.ndarray) -> float:
    recalls = [np.mean(label[y == c] == c) for c in (0, 1) if np.any(y == c)]
    return float(np.mean(recalls))


def never_predicted(label: np.ndarray) -> int | None:
    """The class (0 or 1) the model gave no test row, or None when it answered both."""
    answered = set(np.unique(label).tolist())
    missing = {0, 1} - answered
    return missing.pop() if len(missing) == 1 else None


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


def rounded(values: dict[str, float]) -> dict[str, float]:
    """As metrics.json holds them: six decimals, the same text on any machine."""
    return {k: round(v, 6) for k, v in values.items()}


def summary(values: dict[str, float], matrix: list[list[int]]) -> dict[str, Any]:
    """metrics.json: the metrics in classification_metrics' order (the six everyone knows
    first), then the confusion matrix."""
    return {**rounded(values), "confusion_matrix": matrix}
