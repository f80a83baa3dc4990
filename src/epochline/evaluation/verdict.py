"""What evaluate warns about, in one line each: a class the model never answers on the test
rows, and a network below the logistic regression fitted on the same rows. The same
judgement stops retrain from promoting such a model (retrain/compare.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from epochline.core.params import RetrainParams
from epochline.evaluation import metrics
from epochline.evaluation.baselines import LOGISTIC, Yardstick


@dataclass(frozen=True)
class Verdict:
    never_predicts: str | None  # the class (as the data names it) no test row was given
    below: str | None  # why the network is below the logistic regression, if it is

    def lines(self) -> list[str]:
        found = []
        if self.never_predicts is not None:
            found.append(
                f"WARNING: the model never predicts '{self.never_predicts}' on the test rows; "
                "try evaluate.threshold: max_f1 or train.class_weight: balanced"
            )
        if self.below is not None:
            found.append(f"WARNING: below the logistic regression yardstick: {self.below}")
        return found


def worse_by(metric: str, value: float, yardstick: float, margin: float) -> bool:
    """value is worse than yardstick by more than margin, in the metric's direction."""
    if metric in metrics.LOWER_IS_BETTER:
        return value > yardstick + margin
    return value < yardstick - margin


def below_baseline(metric: str, value: float, yardstick: float, margin: float) -> str | None:
    """`roc_auc 0.7037 < 0.7211 - 0.01`: why `value` is below the yardstick, or None."""
    if not worse_by(metric, value, yardstick, margin):
        return None
    sign = (">", "+") if metric in metrics.LOWER_IS_BETTER else ("<", "-")
    return (
        f"{metric} {value:.4f} {sign[0]} {yardstick:.4f} (logistic regression) {sign[1]} "
        f"{margin} (retrain.baseline_margin)"
    )


def judge(
    values: dict[str, float],
    label: np.ndarray,
    yardsticks: list[Yardstick],
    classes: tuple[Any, Any] | list[Any],
    rule: RetrainParams,
) -> Verdict:
    missing = metrics.never_predicted(label)
    never = None if missing is None else str(classes[missing])
    lr = next((y for y in yardsticks if y.name == LOGISTIC), None)
    below = None
    if lr is not None:
        below = below_baseline(
            rule.metric, values[rule.metric], lr.values[rule.metric], rule.baseline_margin
        )
    return Verdict(never, below)
