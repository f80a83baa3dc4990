"""`epochline compare`'s numbers without DVC: two runs in a real SQLite store, answers made
by hand where the better model is known, and the report built from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from epochline.core.params import Params
from epochline.evaluation.metrics import classification_metrics
from epochline.retrain.compare import Scores
from epochline.review.compare import Shared, metric_rows, verdict
from epochline.review.render import markdown
from epochline.review.targets import Side

N = 400


def _answers(seed: int = 0) -> tuple[np.ndarray, Scores, Scores]:
    """A guesses near 0.5, B is sharp and mostly right: B is better on every metric."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, N)
    a = np.clip(0.5 + np.where(y == 1, 0.05, -0.05) + rng.normal(0, 0.1, N), 0.01, 0.99)
    b = np.clip(np.where(y == 1, 0.85, 0.15) + rng.normal(0, 0.1, N), 0.01, 0.99)
    return y, Scores(a, (a >= 0.5).astype(int)), Scores(b, (b >= 0.5).astype(int))


@pytest.fixture
def client(tmp_path: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")


def _side(client: MlflowClient, name: str, metrics: dict[str, float], **tags: str) -> Side:
    experiment = client.get_experiment_by_name("e") or client.get_experiment(
        client.create_experiment("e")
    )
    run = client.create_run(experiment.experiment_id, run_name=name, tags=tags)
    for key, value in metrics.items():
        client.log_metric(run.info.run_id, key, value)
    logged: Run = client.get_run(run.info.run_id)
    return Side(name, "run", logged, f"models:/m-{name}", run.info.run_id)


def _logged(y: np.ndarray, scores: Scores) -> dict[str, float]:
    values = classification_metrics(y, scores.probability, scores.label)
    return {f"test_{k}": v for k, v in values.items()} | {"baseline_lr_accuracy": 0.5}


def test_a_clearly_better_b_has_intervals_on_the_better_side_for_every_metric(
    client: MlflowClient,
) -> None:
    y, a, b = _answers()
    side_a, side_b = _side(client, "a", _logged(y, a)), _side(client, "b", _logged(y, b))
    shared = Shared(y, a, b)

    rows = {r["name"]: r for r in metric_rows(side_a, side_b, shared, Params().retrain)}

    loss = rows["log_loss"]
    assert loss["lower_is_better"] and loss["difference"] < 0
    assert loss["shared_difference"] == pytest.approx(loss["difference"])
    assert loss["ci_low"] < loss["ci_high"] < 0  # B - A in the metric's own direction
    for name in ("accuracy", "f1", "roc_auc", "pr_auc", "balanced_accuracy"):
        assert 0 < rows[name]["ci_low"] <= rows[name]["shared_difference"] <= rows[name]["ci_high"]
    assert rows["positive_rate"]["ci_low"] is None
    assert (
        verdict(side_a, side_b, shared, Params().retrain, list(rows.values()))["decision"]
        == "promoted"
    )


def test_a_b_that_never_answers_positive_is_refused_as_retrain_would(
    client: MlflowClient,
) -> None:
    y, a, b = _answers(1)
    silent = Scores(b.probability * 0.4, np.zeros(N, dtype=int))  # never 1
    side_a, side_b = _side(client, "a", _logged(y, a)), _side(client, "b", _logged(y, silent))
    rows = metric_rows(side_a, side_b, Shared(y, a, silent), Params().retrain)

    judged = verdict(side_a, side_b, Shared(y, a, silent), Params().retrain, rows)

    assert judged["decision"] == "kept"
    assert "refused: never predicts '1' on the test rows" in judged["line"]


def _parent(client: MlflowClient, name: str, mean: float, std: float) -> Side:
    stats = {"mean": mean, "std": std, "min": mean - std, "max": mean + std}
    metrics = {f"test_accuracy_{k}": v for k, v in stats.items()}
    return _side(client, name, metrics, **{"epochline.seeds": "42,43,44"})


@pytest.mark.parametrize(
    ("b_mean", "inside"), [(0.905, True), (0.919, True), (0.925, False), (0.88, False)]
)
def test_a_difference_no_larger_than_a_seeds_std_is_inside_the_spread(
    client: MlflowClient, b_mean: float, inside: bool
) -> None:
    y, a, b = _answers(2)
    side_a, side_b = _parent(client, "a", 0.90, 0.02), _parent(client, "b", b_mean, 0.005)
    shared = Shared(y, a, b)
    rows = metric_rows(side_a, side_b, shared, Params().retrain)

    assert [r["within_seed_spread"] for r in rows] == [inside]
    assert rows[0]["difference"] == pytest.approx(b_mean - 0.90)
    judged = verdict(side_a, side_b, shared, Params().retrain, rows)
    # b beats a on the shared rows by far: only the spread keeps it
    assert judged["decision"] == ("kept" if inside else "promoted")
    assert ("inside the seed spread on accuracy" in judged["line"]) is inside
    assert "the yardstick not checked" in judged["line"]  # a seeds parent logs none


def test_the_table_shows_the_shared_rows_difference_only_where_it_differs(
    client: MlflowClient,
) -> None:
    y, a, b = _answers(3)
    same = {"a": _side(client, "a", _logged(y, a)), "b": _side(client, "b", _logged(y, b))}
    older = _side(
        client, "old", _logged(y[: N // 2], Scores(a.probability[: N // 2], a.label[: N // 2]))
    )

    def report(side_a: Side) -> str:
        shared = Shared(y, a, b)
        rows = metric_rows(side_a, same["b"], shared, Params().retrain)
        return markdown({
            "a": {"target": "a", "how": "run", "run_name": "a", "run_id": "1", "model_uri": "m",
                  "spread": None},
            "b": {"target": "b", "how": "run", "run_name": "b", "run_id": "2", "model_uri": "m",
                  "spread": None},
            "differences": {"params": [], "packages": [], "data_digest": {"a": "d", "b": "d"},
                            "git_commit": {"a": "c", "b": "c"}},
            "metrics": rows, "confidence": 0.95, "shared_rows": {"n": N, "reason": None},
            "verdict": {"line": "v"},
        })  # fmt: skip

    assert "on the shared rows |" not in report(same["a"])
    assert "the runs were tested on these rows" in report(same["a"])
    assert "| B - A | on the shared rows |" in report(older)  # A was tested on other rows


def test_nothing_is_judged_without_shared_rows(client: MlflowClient) -> None:
    y, a, b = _answers(4)
    side_a, side_b = _side(client, "a", _logged(y, a)), _side(client, "b", _logged(y, b))
    shared = Shared(reason="A was held out on other rows")
    rows = metric_rows(side_a, side_b, shared, Params().retrain)

    assert all(r["ci_low"] is None and r["shared_difference"] is None for r in rows)
    assert verdict(side_a, side_b, shared, Params().retrain, rows) == {
        "decision": "not judged",
        "line": "not judged: A was held out on other rows",
    }
