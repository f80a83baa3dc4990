"""The promotion rule: a paired bootstrap on shared rows, a floor, and a minimum gain."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from epochline.core.params import RetrainParams
from epochline.retrain.compare import (
    Scores,
    _label_metric,
    decide,
    metric_value,
    paired_differences,
)

RULE = RetrainParams()  # accuracy, min_delta 0.01, min_metric 0.7, 95%, 2000 samples, seed 42


def _answers(y: np.ndarray, correct: np.ndarray, seed: int = 0) -> Scores:
    """Labels right exactly where `correct`; probabilities that agree with the labels."""
    label = np.where(correct, y, 1 - y)
    rng = np.random.default_rng(seed)
    probability = np.where(label == 1, rng.uniform(0.5, 1, len(y)), rng.uniform(0, 0.5, len(y)))
    return Scores(probability=probability, label=label)


def _labels(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, n)


def _mask(n: int, right: slice | list[slice]) -> np.ndarray:
    mask = np.zeros(n, bool)
    for part in right if isinstance(right, list) else [right]:
        mask[part] = True
    return mask


def _clearly_better(n: int = 300) -> tuple[np.ndarray, Scores, Scores]:
    # Champion right on 70% of rows, challenger on 90%, challenger's right rows a superset.
    y = _labels(n)
    champion = _answers(y, _mask(n, slice(0, int(0.7 * n))), seed=2)
    challenger = _answers(y, _mask(n, slice(0, int(0.9 * n))), seed=3)
    return y, challenger, champion


def _noisy(net: int, n: int = 200) -> tuple[np.ndarray, Scores, Scores]:
    # 140 rows both right; the challenger alone right on 20 + net rows, the champion alone
    # on 20: ~40 discordant rows, so a net gain of 1 or 2 rows is well inside the noise.
    y = _labels(n)
    only_chal = slice(140, 160 + net)
    only_champ = slice(160 + net, 180 + net)
    challenger = _answers(y, _mask(n, [slice(0, 140), only_chal]), seed=2)
    champion = _answers(y, _mask(n, [slice(0, 140), only_champ]), seed=3)
    return y, challenger, champion


def test_tie_is_kept_with_zero_delta() -> None:
    y, challenger, _ = _clearly_better()
    result = decide(y, challenger, challenger, RULE)
    assert result.decision == "kept"
    assert not result.promoted
    assert result.delta == 0
    assert result.champion == result.challenger
    assert result.ci_low == result.ci_high == 0
    assert result.p_value == 1.0  # every bootstrap sample has challenger ≤ champion


def test_clearly_better_challenger_is_promoted() -> None:
    y, challenger, champion = _clearly_better()
    result = decide(y, challenger, champion, RULE)
    assert result.decision == "promoted", result.reason
    assert result.promoted
    assert result.challenger == pytest.approx(0.9)
    assert result.champion == pytest.approx(0.7)
    assert result.delta == pytest.approx(0.2)
    assert result.ci_low is not None and result.ci_high is not None
    assert 0 < result.ci_low < 0.2 < result.ci_high
    assert result.p_value is not None and result.p_value < 0.01
    assert result.n_rows == 300
    assert result.reason.startswith("better: ")


@pytest.mark.parametrize("net", [1, 2])
def test_slightly_better_but_noisy_challenger_is_kept(net: int) -> None:
    y, challenger, champion = _noisy(net)
    result = decide(y, challenger, champion, RULE)
    assert result.delta == pytest.approx(net / 200)
    assert result.delta > 0
    assert result.decision == "kept"
    assert result.ci_low is not None and result.ci_low <= 0 < result.ci_high
    assert "interval" in result.reason
    assert result.reason.startswith("not better enough: ")
    assert result.p_value is not None and result.p_value > 0.05


def test_gain_resting_on_few_rows_is_kept_for_the_interval() -> None:
    # 3 rows of 100 fixed, none broken: delta 0.03 clears min_delta, but about 5% of
    # resamples miss all 3 rows, so the 95% interval reaches 0 and does not exclude it.
    n = 100
    y = _labels(n)
    champion = _answers(y, _mask(n, slice(0, 80)))
    challenger = _answers(y, _mask(n, slice(0, 83)))
    result = decide(y, challenger, champion, RULE)
    assert result.delta == pytest.approx(0.03)
    assert result.ci_low == 0
    assert result.decision == "kept"
    assert "interval" in result.reason
    assert "min_delta" not in result.reason and "min_metric" not in result.reason


def test_real_but_too_small_gain_is_kept_for_min_delta() -> None:
    # 20 rows of 3000 fixed, none broken: the interval excludes 0, the gain (0.0067) is
    # below retrain.min_delta = 0.01.
    n = 3000
    y = _labels(n)
    champion = _answers(y, _mask(n, slice(0, 2400)))
    challenger = _answers(y, _mask(n, slice(0, 2420)))
    result = decide(y, challenger, champion, RULE)
    assert result.ci_low is not None and result.ci_low > 0
    assert result.decision == "kept"
    assert "min_delta" in result.reason
    assert "interval" not in result.reason


def test_better_but_under_the_floor_is_kept() -> None:
    y, challenger, champion = _clearly_better()
    result = decide(y, challenger, champion, RetrainParams(min_metric=0.95))
    assert result.ci_low is not None and result.ci_low > 0
    assert result.decision == "kept"
    assert "min_metric" in result.reason
    assert "interval" not in result.reason


@pytest.mark.parametrize(
    ("min_metric", "decision", "word"), [(0.85, "promoted", "passes"), (0.95, "kept", "below")]
)
def test_no_champion_goes_by_the_floor(min_metric: float, decision: str, word: str) -> None:
    y, challenger, _ = _clearly_better()
    rule = RetrainParams(min_metric=min_metric)
    result = decide(y, challenger, None, rule)
    assert result.decision == decision
    assert result.challenger == pytest.approx(0.9)
    assert (result.champion, result.delta, result.ci_low, result.ci_high, result.p_value) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert word in result.reason and "no champion" in result.reason


def test_fixed_seed_is_deterministic_and_another_seed_differs() -> None:
    y, challenger, champion = _noisy(2)
    first = decide(y, challenger, champion, RULE)
    assert decide(y, challenger, champion, RULE) == first
    other = decide(y, challenger, champion, RetrainParams(seed=7))
    assert (other.ci_low, other.ci_high) != (first.ci_low, first.ci_high)
    assert other.delta == first.delta  # the point estimate does not depend on the seed


def _degenerate_rows(y: np.ndarray, label: np.ndarray) -> list[np.ndarray]:
    n = len(y)
    return [
        np.resize(np.flatnonzero(label == 0), n),  # no positive predictions: precision 0/0
        np.resize(np.flatnonzero(y == 0), n),  # no positive truths: recall 0/0
        np.resize(np.flatnonzero((y == 0) & (label == 0)), n),  # only tn: f1 0/0
    ]


@pytest.mark.filterwarnings("ignore:Only one class is present")  # AUC on degenerate rows
@pytest.mark.parametrize("name", ["accuracy", "precision", "recall", "f1"])
def test_label_metric_equals_sklearn_on_each_resample(name: str) -> None:
    rng = np.random.default_rng(5)
    n = 60
    y = rng.integers(0, 2, n)
    label = np.where(rng.random(n) < 0.75, y, 1 - y)
    idx = np.vstack([rng.integers(0, n, (6, n)), *_degenerate_rows(y, label)])

    got = _label_metric(name, y, label, idx)

    # metric_value is the sklearn scorer that the point estimate uses.
    want = [metric_value(name, y[i], Scores(label[i].astype(float), label[i])) for i in idx]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert not np.isnan(got).any()
    if name in ("precision", "recall", "f1"):
        assert (got[6:] == 0).all()  # the degenerate rows: zero division counts as 0


@pytest.mark.parametrize("name", ["accuracy", "precision", "recall", "f1", "roc_auc"])
def test_metric_value_matches_sklearn(name: str) -> None:
    y, challenger, _ = _noisy(2)
    if name == "roc_auc":
        want = skm.roc_auc_score(y, challenger.probability)
    else:
        want = getattr(skm, f"{name}_score")(y, challenger.label)
    assert metric_value(name, y, challenger) == pytest.approx(want)


def test_roc_auc_decides_on_probabilities() -> None:
    # The challenger ranks rows well but thresholds badly (every label 0); the champion's
    # labels are perfect but its probabilities are noise. AUC must see only probabilities.
    n = 120
    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, n)
    ranks_well = Scores(probability=y * 0.6 + rng.uniform(0, 0.4, n), label=np.zeros(n, int))
    labels_well = Scores(probability=rng.uniform(0, 1, n), label=y.copy())
    rule = RetrainParams(metric="roc_auc", n_bootstrap=100)

    result = decide(y, ranks_well, labels_well, rule)

    assert result.metric == "roc_auc"
    assert result.challenger == pytest.approx(skm.roc_auc_score(y, ranks_well.probability))
    assert result.champion == pytest.approx(skm.roc_auc_score(y, labels_well.probability))
    assert result.decision == "promoted", result.reason
    assert result.ci_low is not None and result.ci_low > 0
    assert decide(y, labels_well, ranks_well, rule).decision == "kept"
    assert decide(y, ranks_well, labels_well, RULE).decision == "kept"  # accuracy 0.5 vs 1


@pytest.mark.parametrize("with_champion", [True, False])
def test_as_dict_is_json_serialisable(with_champion: bool) -> None:
    y, challenger, champion = _clearly_better()
    result = decide(y, challenger, champion if with_champion else None, RULE)
    loaded = json.loads(json.dumps(result.as_dict()))
    assert loaded == result.as_dict()
    assert loaded["decision"] == "promoted"
    assert set(loaded) >= {"metric", "challenger", "champion", "delta", "ci_low", "p_value"}


def test_large_test_sets_are_resampled_in_blocks_with_the_same_answer() -> None:
    # 5,000 rows: 200 resamples per block, 10 blocks; the decision logic must not notice.
    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, 5000)
    good = Scores(y.astype(float), np.where(rng.random(5000) < 0.9, y, 1 - y))
    weak = Scores(y.astype(float), np.where(rng.random(5000) < 0.8, y, 1 - y))
    rule = RetrainParams()
    diffs = paired_differences(y, good, weak, rule)
    assert diffs.shape == (rule.n_bootstrap,)
    assert decide(y, good, weak, rule).decision == "promoted"
    assert decide(y, weak, weak, rule).decision == "kept"


def test_clearly_worse_challenger_is_called_worse_not_noise() -> None:
    y, better, worse = _clearly_better()
    result = decide(y, worse, better, RULE)
    assert result.decision == "kept"
    assert result.ci_high is not None and result.ci_high < 0
    assert result.reason.startswith("worse: ")
    assert "below 0: the challenger is worse" in result.reason
    assert "could be noise" not in result.reason
