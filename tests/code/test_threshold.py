"""evaluate.threshold's rules on validation rows small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pytest

from epochline.evaluation.threshold import DEFAULT, choose

# Ten rows ranked by probability; positives at ranks 1, 2, 4, 7 (from the top).
PROB = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
Y = np.array([1, 1, 0, 1, 0, 0, 1, 0, 0, 0], dtype=bool)


def _counts(cut: float) -> tuple[float, float]:
    said = cut <= PROB
    return (Y & said).sum() / said.sum(), (Y & said).sum() / Y.sum()


def test_a_number_is_used_as_given() -> None:
    chosen = choose(0.3, Y, PROB)
    assert chosen.value == 0.3 and chosen.note is None and chosen.describe() == "0.3000"


def test_max_f1_picks_the_threshold_with_the_best_f1() -> None:
    f1 = {cut: 2 * p * r / (p + r) for cut in PROB for p, r in [_counts(cut)]}
    chosen = choose("max_f1", Y, PROB)
    assert chosen.value == max(f1, key=lambda c: (f1[c], -c))  # the lowest of equal F1s
    assert chosen.value == 0.7  # 3 of 4 rows said positive are, 3 of 4 positives found
    assert chosen.describe() == "max_f1 on the validation rows: 0.7000"


@pytest.mark.parametrize(("goal", "expected"), [(1.0, 0.9), (0.75, 0.7), (0.5, 0.3)])
def test_precision_target_takes_the_lowest_threshold_that_reaches_it(
    goal: float, expected: float
) -> None:
    chosen = choose(f"precision>={goal}", Y, PROB)
    assert chosen.value == expected and _counts(expected)[0] >= goal
    lower = PROB[expected > PROB].max()
    assert _counts(lower)[0] < goal  # one step lower misses it: the most recall it allows


@pytest.mark.parametrize(("goal", "expected"), [(0.5, 0.9), (0.75, 0.7), (1.0, 0.4)])
def test_recall_target_takes_the_highest_threshold_that_reaches_it(
    goal: float, expected: float
) -> None:
    chosen = choose(f"recall>={goal}", Y, PROB)
    assert chosen.value == expected and _counts(expected)[1] >= goal
    higher = PROB[expected < PROB].min()
    assert _counts(higher)[1] < goal


def test_an_unreachable_precision_takes_the_best_and_says_so() -> None:
    y = np.array([0, 1, 0, 1], dtype=bool)  # the top row is negative: precision never 1
    chosen = choose("precision>=1", y, np.array([0.9, 0.8, 0.7, 0.6]))
    # Precision 1/2 at 0.8 and 2/4 at 0.6: the best, and of those the one with more recall.
    assert chosen.value == 0.6 and chosen.note is not None
    assert "no threshold reaches precision 1.0: the best is 0.5000" in chosen.describe()


def test_without_a_positive_validation_row_a_rule_falls_back_and_says_so() -> None:
    chosen = choose("max_f1", np.zeros(4, dtype=bool), np.array([0.9, 0.5, 0.3, 0.1]))
    assert chosen.value == DEFAULT and "no positive validation row" in (chosen.note or "")
