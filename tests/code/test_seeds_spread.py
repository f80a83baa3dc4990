"""Seed spread: the aggregation over seeds, the parent/children reader on a real SQLite MLflow
store, and a retrain's decision across seeds (its reason, tag, report)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from epochline.core.params import Params, RetrainParams, TrainParams
from epochline.evaluation import metrics
from epochline.retrain import recording, report
from epochline.retrain.compare import Comparison, Scores, decide
from epochline.retrain.decision import (
    Decision,
    Provenance,
    SeedJudgement,
    Versions,
    across_seeds,
    seeds_tag,
)
from epochline.retrain.drift import BatchDrift
from epochline.review import seeds
from epochline.tracking.registry import Registry
from epochline.tracking.tags import (
    KEPT,
    PROMOTED,
    RUN_TAG_PREFIX,
    TAG_PARENT_RUN,
    TAG_SEEDS,
    Tag,
    tag_name,
)

RULE = RetrainParams()  # accuracy, min_delta 0.01, min_metric 0.7


def _values(rng: np.random.Generator) -> dict[str, float]:
    return {name: float(rng.uniform(0, 1)) for name in metrics.NAMES}


def test_aggregate_is_numpys_mean_sample_std_min_and_max_of_every_test_metric() -> None:
    rng = np.random.default_rng(3)
    per_seed = [_values(rng) for _ in range(4)]
    found = seeds.aggregate(per_seed)
    assert len(found) == 4 * len(metrics.NAMES)
    for name in metrics.NAMES:
        column = np.array([v[name] for v in per_seed])
        assert found[f"test_{name}_mean"] == pytest.approx(np.mean(column), abs=1e-15)
        assert found[f"test_{name}_std"] == pytest.approx(np.std(column, ddof=1), abs=1e-15)
        assert found[f"test_{name}_min"] == column.min()
        assert found[f"test_{name}_max"] == column.max()


def test_aggregate_on_known_values_and_refuses_one_seed() -> None:
    per_seed = [dict.fromkeys(metrics.NAMES, v) for v in (0.90, 0.92, 0.97)]
    found = seeds.aggregate(per_seed)
    assert found["test_accuracy_mean"] == pytest.approx(0.93)
    # sample std (ddof=1): sqrt(((-.03)² + (-.01)² + .04²) / 2) = sqrt(0.0013)
    assert found["test_accuracy_std"] == pytest.approx(np.sqrt(0.0013))
    assert (found["test_log_loss_min"], found["test_log_loss_max"]) == (0.90, 0.97)
    with pytest.raises(ValueError, match="2 seeds or more"):
        seeds.aggregate(per_seed[:1])


def test_seeds_count_up_from_train_seed_and_stop_at_its_bound() -> None:
    params = Params(train=TrainParams(seed=7))
    assert seeds.seeds_for(params, 3) == [7, 8, 9]
    assert seeds.with_seed(params, 9).train.seed == 9
    assert seeds.with_seed(params, 9).train.lr == params.train.lr
    last = Params(train=TrainParams(seed=seeds.SEED_MAX - 1))
    assert seeds.seeds_for(last, 2)[-1] == seeds.SEED_MAX
    with pytest.raises(seeds.SeedsUnavailable, match=r"lower train\.seed"):
        seeds.seeds_for(last, 3)


def test_seeds_refuse_several_training_processes() -> None:
    params = Params(train=TrainParams(nproc_per_node=2))
    with pytest.raises(seeds.SeedsUnavailable, match=r"train\.nproc_per_node = 2"):
        seeds.check_one_process(params)


@pytest.fixture
def client(tmp_path: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")


def _parent_with_children(client: MlflowClient) -> tuple[str, dict[int, dict[str, float]]]:
    experiment_id = client.create_experiment("seeds", artifact_location=None)
    rng = np.random.default_rng(5)
    per_seed = {seed: _values(rng) for seed in (42, 43, 44)}
    parent = client.create_run(experiment_id, tags={TAG_SEEDS: "42,43,44"}, run_name="seeds")
    found = seeds.aggregate(list(per_seed.values()))
    client.log_batch(parent.info.run_id, metrics=[Metric(k, v, 0, 0) for k, v in found.items()])
    for seed in (44, 42, 43):  # not in seed order: children() orders them
        child = client.create_run(experiment_id, tags={TAG_PARENT_RUN: parent.info.run_id})
        client.log_batch(
            child.info.run_id,
            metrics=[Metric(f"test_{k}", v, 0, 0) for k, v in per_seed[seed].items()],
            params=[Param("train.seed", str(seed))],
        )
    client.create_run(experiment_id, tags={TAG_PARENT_RUN: "another-parent"})
    return parent.info.run_id, per_seed


def test_spread_and_children_read_a_parent_back_from_the_store(client: MlflowClient) -> None:
    parent_id, per_seed = _parent_with_children(client)

    found = seeds.spread(client.get_run(parent_id))
    assert found is not None and list(found) == list(metrics.NAMES)
    auc = np.array([per_seed[s]["roc_auc"] for s in (42, 43, 44)])
    assert found["roc_auc"] == pytest.approx(
        {"mean": auc.mean(), "std": auc.std(ddof=1), "min": auc.min(), "max": auc.max(), "n": 3}
    )
    kids = seeds.children(client, parent_id)
    assert [r.data.params["train.seed"] for r in kids] == ["42", "43", "44"]
    assert all(r.data.tags[TAG_PARENT_RUN] == parent_id for r in kids)
    assert kids[1].data.metrics["test_accuracy"] == per_seed[43]["accuracy"]
    # A child, or any run that is not a seeds parent, has no spread.
    assert seeds.spread(kids[0]) is None
    assert seeds.children(client, kids[0].info.run_id) == []


def test_summary_shows_each_metric_as_mean_std_min_max() -> None:
    found = seeds.aggregate([dict.fromkeys(metrics.NAMES, v) for v in (0.90, 0.92, 0.97)])
    text = seeds.summary("seeds 42-44 · baseline 1a2b3c4", "abc", [42, 43, 44], found, "URL")
    lines = text.splitlines()
    assert lines[0] == "seeds: parent run 'seeds 42-44 · baseline 1a2b3c4' (abc), 3 child runs"
    assert "over seeds 42, 43, 44 (std: ddof=1)" in lines[1]
    assert lines[2].split() == ["accuracy", "0.9300", "±", "0.0361", "[0.9000,", "0.9700]"]
    assert len(lines) == 3 + len(metrics.NAMES) and lines[-1] == "  runs: URL"


# --- a retrain across seeds: every seed's model judged by the one rule


def _scores(y: np.ndarray, right: int) -> Scores:
    """Answers right on the first `right` rows."""
    label = np.where(np.arange(len(y)) < right, y, 1 - y)
    return Scores(probability=np.where(label == 1, 0.8, 0.2), label=label)


Y = np.random.default_rng(1).integers(0, 2, 400)
CHAMPION = _scores(Y, 300)  # accuracy 0.75


def _judged(right: dict[int, int], champion: Scores | None = CHAMPION) -> list[SeedJudgement]:
    """Each seed's model right on `right[seed]` of the 400 rows, judged against `champion`."""
    return [
        SeedJudgement.of(seed, f"run{seed}", decide(Y, _scores(Y, n), champion, RULE))
        for seed, n in right.items()
    ]


def _challenger(judged: list[SeedJudgement], champion: Scores | None = CHAMPION) -> Comparison:
    """The first seed's comparison: the challenger's own."""
    right = round(judged[0].value * len(Y))
    return decide(Y, _scores(Y, right), champion, RULE)


def test_a_gain_that_holds_for_every_seed_promotes_and_says_so() -> None:
    judged = _judged({42: 390, 43: 380, 44: 385})
    challenger = _challenger(judged)
    result = across_seeds(challenger, judged)
    assert result.decision == PROMOTED
    assert result.reason == (
        "holds across 3 seeds: deltas +0.2250, +0.2000, +0.2125; " + challenger.reason
    )
    assert (result.challenger, result.delta) == (challenger.challenger, challenger.delta)
    assert seeds_tag(judged) == "42 +0.2250 held; 43 +0.2000 held; 44 +0.2125 held"


def test_one_seed_below_the_rule_keeps_the_challenger_and_names_that_seed() -> None:
    judged = _judged({42: 390, 43: 302, 44: 385})  # seed 43: +0.0050, within min_delta
    result = across_seeds(_challenger(judged), judged)
    assert result.decision == KEPT
    assert result.reason.startswith("not across the seeds: seed 43 not better enough: delta ")
    assert result.reason.endswith("; 2 of 3 seeds held (deltas +0.2250, +0.0050, +0.2125)")
    assert judged[1].reason in result.reason
    assert seeds_tag(judged).split("; ")[1] == "43 +0.0050 not held"


def test_a_first_champion_needs_every_seed_above_the_floor() -> None:
    judged = _judged({42: 390, 43: 260}, champion=None)  # seed 43: accuracy 0.65 < 0.7
    result = across_seeds(_challenger(judged, None), judged)
    assert result.decision == KEPT
    assert result.reason == (
        "not across the seeds: seed 43 no champion yet; accuracy 0.6500 is below the floor "
        "retrain.min_metric = 0.7; 1 of 2 seeds held (accuracy 0.9750, 0.6500)"
    )
    passing = _judged({42: 390, 43: 300}, champion=None)
    assert across_seeds(_challenger(passing, None), passing).reason.startswith(
        "holds across 2 seeds: accuracy 0.9750, 0.7500; no champion yet; "
    )


def _decision(judged: list[SeedJudgement]) -> Decision:
    provenance = Provenance("m", "run42", "lr=0.02", "link", "d" * 16, "c" * 40)
    return Decision(
        "2026-01-02T03:04:05+00:00", across_seeds(_challenger(judged), judged),
        BatchDrift.nothing_new([]), Versions("2", "1"), provenance, {}, {}, tuple(judged),
    )  # fmt: skip


def test_the_record_carries_each_seed_in_tags_report_json_and_markdown() -> None:
    judged = _judged({42: 390, 43: 302})
    decision = _decision(judged)
    tags = decision.tags()
    assert tags[Tag.SEEDS] == "42 +0.2250 held; 43 +0.0050 not held"
    assert list(tags)[-1] == Tag.DECISION and tags[Tag.DECISION] == KEPT
    data = json.loads(json.dumps(decision.as_json()))
    assert [(s["seed"], s["held"], s["run_id"]) for s in data["seeds"]] == [
        (42, True, "run42"), (43, False, "run43"),
    ]  # fmt: skip
    assert data["seeds"][1]["delta"] == pytest.approx(0.005)
    text = report.markdown(decision)
    assert "## Seeds: 1 of 2 held (retrain.seeds: each must)" in text
    assert "| 43 | run43 | 0.7550 | +0.0050 | [" in text and text.count("| no |") == 1
    # One seed: the record is as it always was.
    single = replace(decision, seeds=())
    assert Tag.SEEDS not in single.tags() and "seeds" not in single.as_json()
    assert "## Seeds" not in report.markdown(single)


def test_a_seeds_decision_is_recorded_on_the_version_and_its_run(
    client: MlflowClient, tmp_path: Path
) -> None:
    experiment_id = client.create_experiment("retrain")
    run_id = client.create_run(experiment_id).info.run_id
    client.create_registered_model("m")
    client.create_model_version("m", "runs:/x/model", run_id)
    decision = _decision(_judged({42: 390, 43: 380}))
    decision = replace(decision, versions=Versions("1", None),
                       provenance=replace(decision.provenance, run_id=run_id))  # fmt: skip

    recording.record(Registry(client, "m"), decision, tmp_path / "retrain")

    held = "42 +0.2250 held; 43 +0.2000 held"
    assert client.get_model_version("m", "1").tags["epochline.seeds"] == held
    assert client.get_run(run_id).data.tags[tag_name(Tag.SEEDS, RUN_TAG_PREFIX)] == held
    on_disk = json.loads((tmp_path / "retrain/report.json").read_text())
    assert [s["seed"] for s in on_disk["seeds"]] == [42, 43]
    assert "| 43 | run43 |" in (tmp_path / "retrain/report.md").read_text()
