"""The decision threshold: a number, or chosen on the validation rows by a named rule.

`evaluate.threshold` is a probability (0.5: answer 1 at or above it) or one of
- `max_f1`: the threshold with the best F1 on the validation rows;
- `precision>=P`: the lowest threshold whose precision reaches P (the most recall that
  precision allows); if none reaches it, the one with the best precision, said in a note;
- `recall>=R`: the highest threshold whose recall reaches R (the best precision at it).
A rule's threshold is one of the validation rows' probabilities; train bakes the value into
the model, which answers 1 at or above it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT = 0.5  # where a rule has nothing to go on (no positive validation row)


@dataclass(frozen=True)
class Threshold:
    value: float
    rule: str  # evaluate.threshold as given: 0.5, max_f1, precision>=0.9 ...
    note: str | None = None  # why the rule could not be met as asked, when it could not

    def describe(self) -> str:
        given = f"{self.rule} on the validation rows: " if self.rule != str(self.value) else ""
        return f"{given}{self.value:.4f}" + (f" ({self.note})" if self.note else "")


def choose(rule: float | str, y: np.ndarray, probability: np.ndarray) -> Threshold:
    """The threshold `rule` gives for validation labels `y` (bool) and probabilities."""
    if not isinstance(rule, str):
        return Threshold(float(rule), str(rule))
    from sklearn.metrics import precision_recall_curve  # here: 0.9 s that a number never needs

    positives = int(np.sum(y))
    if positives == 0:
        return Threshold(DEFAULT, rule, f"no positive validation row: {DEFAULT} instead")
    # thresholds ascend; precision[i] and recall[i] are those of predicting 1 at >= thresholds[i]
    precision, recall, thresholds = precision_recall_curve(y, probability)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    if rule == "max_f1":
        with np.errstate(divide="ignore", invalid="ignore"):
            f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
        return Threshold(float(thresholds[int(np.argmax(f1))]), rule)
    kind, target = rule.split(">=")
    goal = float(target)
    if kind == "recall":
        reached = np.flatnonzero(recall >= goal)  # recall falls as the threshold rises
        return Threshold(float(thresholds[reached[-1]]), rule)
    reached = np.flatnonzero(precision >= goal)
    if len(reached):
        return Threshold(float(thresholds[reached[0]]), rule)
    best = int(np.argmax(precision))
    note = f"no threshold reaches precision {goal}: the best is {precision[best]:.4f}"
    return Threshold(float(thresholds[best]), rule, note)
