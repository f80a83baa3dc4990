"""Figures logged to MLflow: the confusion matrix and the ROC curve."""

from __future__ import annotations

from typing import Any

# Figure objects, not pyplot: no GUI backend, no global figure state (headless stages).
from matplotlib.figure import Figure


def confusion_figure(matrix: list[list[int]]) -> Figure:
    fig = Figure(figsize=(4, 4))
    ax = fig.subplots()
    ax.imshow(matrix, cmap="Blues")
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            ax.text(j, i, str(count), ha="center", va="center")
    ax.set(xticks=[0, 1], yticks=[0, 1], xlabel="predicted", ylabel="actual", title="Confusion")
    fig.tight_layout()
    return fig


def roc_figure(points: list[dict[str, Any]], auc: float) -> Figure:
    fig = Figure(figsize=(4, 4))
    ax = fig.subplots()
    ax.plot([p["fpr"] for p in points], [p["tpr"] for p in points], label=f"AUC {auc:.3f}")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig
