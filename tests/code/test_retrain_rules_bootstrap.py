"""The paired bootstrap for the metrics retrain.metric gained (pr_auc, balanced_accuracy,
log_loss): each resample's difference is what sklearn says on that resample, turned so
that above 0 means the challenger is better."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from epochline.core.params import RetrainParams
from epochline.retrain.compare import Scores, _label_metric, metric_value, paired_differences

N, RESAMPLES = 60, 100  # one block: paired_differences draws exactly what _resamples does


def _answers(seed: int, dtype: type = np.float64) -> tuple[np.ndarray, Scores, Scores]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, N)
    a: np.ndarray = rng.uniform(0, 1, N).astype(dtype)
    b: np.ndarray = np.where(y == 1, rng.uniform(0.3, 1, N), rng.uniform(0, 0.7, N)).astype(dtype)
    # Certain answers, right and wrong: log_loss must clip them as sklearn does.
    a[:4], b[:4] = [0.0, 1.0, 1.0, 0.0], [1.0, 0.0, y[2], y[3]]
    return y, Scores(a, (a >= 0.5).astype(int)), Scores(b, (b >= 0.5).astype(int))


def _resamples(rule: RetrainParams) -> np.ndarray:
    return np.random.default_rng(rule.seed).integers(0, N, (rule.n_bootstrap, N))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_log_loss_gain_is_sklearns_loss_of_the_champion_minus_the_challengers(
    dtype: type,
) -> None:
    y, challenger, champion = _answers(3, dtype)
    rule = RetrainParams(metric="log_loss", n_bootstrap=RESAMPLES)

    got = paired_differences(y, challenger, champion, rule)

    want = [
        skm.log_loss(y[i], champion.probability[i], labels=[0, 1])
        - skm.log_loss(y[i], challenger.probability[i], labels=[0, 1])
        for i in _resamples(rule)
    ]
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=1e-5 if dtype is np.float32 else 1e-10)
    # The champion ranks better here: its loss is lower, so the challenger's gain is below 0.
    assert (got < 0).all()


@pytest.mark.filterwarnings("ignore:No positive class found")
def test_pr_auc_difference_is_sklearns_average_precision_on_each_resample() -> None:
    y, challenger, champion = _answers(4)
    rule = RetrainParams(metric="pr_auc", n_bootstrap=RESAMPLES)

    got = paired_differences(y, champion, challenger, rule)

    want = [
        skm.average_precision_score(y[i], champion.probability[i])
        - skm.average_precision_score(y[i], challenger.probability[i])
        for i in _resamples(rule)
        if 0 < y[i].sum() < N  # as for roc_auc: resamples of one class are left out
    ]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert len(got) == RESAMPLES and (got > 0).all()


@pytest.mark.filterwarnings("ignore:Only one class is present", "ignore:No positive class")
def test_balanced_accuracy_equals_evaluates_on_each_resample_one_class_ones_too() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, N)
    label = np.where(rng.random(N) < 0.75, y, 1 - y)
    only = [np.resize(np.flatnonzero(y == c), N) for c in (0, 1)]  # one class of truths
    silent = np.resize(np.flatnonzero(label == 0), N)  # no positive answers
    idx = np.vstack([rng.integers(0, N, (6, N)), *only, silent])

    got = _label_metric("balanced_accuracy", y, label, idx)

    want = [
        metric_value("balanced_accuracy", y[i], Scores(label[i].astype(float), label[i]))
        for i in idx
    ]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    # Where truths are one class, it is that class's recall, not half of it.
    assert got[6] == np.mean(label[only[0]] == 0) and got[7] == np.mean(label[only[1]] == 1)


@pytest.mark.parametrize(
    ("metric", "score"),
    [("roc_auc", skm.roc_auc_score), ("pr_auc", skm.average_precision_score)],
)
def test_ranking_metrics_with_tied_scores_are_sklearns_on_each_resample(
    metric: str, score: object
) -> None:
    """Scores with many ties (rounded to a tenth): the per-distinct-score sums must treat a
    tie as scikit-learn does (half a pair for ROC AUC, one threshold for AP)."""
    y, challenger, champion = _answers(6)
    tied = [Scores(np.round(s.probability, 1), s.label) for s in (challenger, champion)]
    rule = RetrainParams(metric=metric, n_bootstrap=RESAMPLES)

    got = paired_differences(y, tied[0], tied[1], rule)

    want = [
        score(y[i], tied[0].probability[i]) - score(y[i], tied[1].probability[i])  # type: ignore[operator]
        for i in _resamples(rule)
        if 0 < y[i].sum() < N
    ]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert np.ptp(got) > 0  # the resamples differ: the test sees more than one value
