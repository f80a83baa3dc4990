"""Real tables with rare positives (3-12 %), end to end as test_real_tables.py runs its own:
accuracy says little here (the majority class has 0.88-0.96), so the network is judged on
ranking (ROC AUC, PR AUC) and on balanced accuracy; and on caravan, where at 0.5 it answers
no one positive, `evaluate.threshold: max_f1` finds them.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.e2e.test_real_tables import (
    Ran,
    Table,
    check_printed_matches_metrics,
    check_readme_row,
    check_summary_and_workspace,
    check_within_a_point_of_the_logistic_regression,
    runs_once,
)

pytestmark = pytest.mark.slow

MAX_F1 = "caravan-max_f1"
TABLES = {
    t.name: t
    for t in (
        Table("caravan", "caravan: bought caravan insurance", rare=True),
        Table("default", "default: defaulted on the card", rare=True),
        Table("hmda", "hmda: mortgage denied", rare=True),
    )
}
# What the never-predicts warning suggests. class_weight: balanced as well was measured and
# left out: on caravan's test rows its F1, recall and balanced accuracy were lower.
RUNS = TABLES | {
    MAX_F1: Table(
        "caravan", "caravan, `evaluate.threshold: max_f1`", rare=True,
        params={"evaluate": {"threshold": "max_f1"}},
    )
}  # fmt: skip


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Ran]:
    return runs_once(tmp_path_factory.mktemp("rare"), RUNS)


@pytest.mark.parametrize("key", RUNS)
def test_repro_summarises_and_leaves_nothing_tracked_changed(
    ran: Callable[[str], Ran], key: str
) -> None:
    check_summary_and_workspace(RUNS[key], ran(key))


@pytest.mark.parametrize("key", TABLES)
def test_network_within_a_point_of_the_logistic_regression(
    ran: Callable[[str], Ran], key: str
) -> None:
    check_within_a_point_of_the_logistic_regression(ran(key))


@pytest.mark.parametrize("key", RUNS)
def test_network_ranks_well_above_the_majority_class(ran: Callable[[str], Ran], key: str) -> None:
    """The majority class ranks at random: ROC AUC 0.5, PR AUC the positive share."""
    metrics = ran(key).metrics
    assert metrics["roc_auc"] > 0.65
    assert metrics["pr_auc"] > 2 * metrics["positive_rate"], metrics


@pytest.mark.parametrize("key", ["default", "hmda", MAX_F1])
def test_network_finds_positives(ran: Callable[[str], Ran], key: str) -> None:
    metrics = ran(key).metrics
    assert metrics["balanced_accuracy"] > 0.6, metrics
    assert metrics["recall"] > 0.2


def test_caravan_at_0_5_finds_no_buyer(ran: Callable[[str], Ran]) -> None:
    # 7 % positives: no test row reaches 0.5 among the buyers; the few it calls buyers are
    # not (the warning for a class never predicted: tests/e2e/test_retrain_rules.py).
    done = ran("caravan")
    assert done.metrics["recall"] == 0.0 and done.metrics["balanced_accuracy"] < 0.51


def test_max_f1_on_caravan_chooses_a_threshold_and_finds_positives(
    ran: Callable[[str], Ran],
) -> None:
    at_half, done = ran("caravan"), ran(MAX_F1)
    metrics, lr = done.metrics, done.metrics["baselines"]["logistic_regression"]
    assert metrics["threshold"] != 0.5
    assert f"threshold {metrics['threshold']:.4f}" in done.summary
    assert metrics["recall"] > 0.3 and metrics["f1"] > 0.15 > at_half.metrics["f1"]
    assert metrics["f1"] > 2 * lr["positive_rate"]  # a rule that finds buyers, not chance
    # The rule moves the cut, not the model: the same ranking as at 0.5.
    assert metrics["roc_auc"] == at_half.metrics["roc_auc"]


@pytest.mark.parametrize("key", RUNS)
def test_printed_baselines_match_what_evaluate_wrote(ran: Callable[[str], Ran], key: str) -> None:
    check_printed_matches_metrics(ran(key))


@pytest.mark.parametrize("key", RUNS)
def test_readme_has_the_run_row_for_row(ran: Callable[[str], Ran], key: str) -> None:
    check_readme_row(RUNS[key], ran(key))
