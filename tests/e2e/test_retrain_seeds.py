"""retrain.seeds end to end: the challenger (the pipeline's model) and N - 1 more seeds, each
judged by the one rule; the record says each seed's part. Real DVC, real MLflow registry,
temp git repo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from epochline.review import seeds
from tests.conftest import copy_project
from tests.e2e.test_retrain import NAME, alias, epochline, registry, tags, versions

pytestmark = pytest.mark.slow


def test_a_first_champion_across_3_seeds_is_judged_and_recorded_seed_by_seed(
    tmp_path: Path,
) -> None:
    project = copy_project(tmp_path / "project", {"retrain": {"seeds": 3}})

    done = epochline(project, "retrain")

    assert versions(project) == ["1"]
    client = registry(project)
    run_id = client.get_model_version(NAME, "1").run_id
    assert run_id is not None
    # The other seeds are the challenger's run's children: the UI nests them under it.
    others = seeds.children(client, run_id)
    assert [r.data.params["train.seed"] for r in others] == ["43", "44"]
    report = json.loads((project / "reports/retrain/report.json").read_text())
    judged = report["seeds"]
    assert [(s["seed"], s["run_id"]) for s in judged] == [
        (42, run_id), (43, others[0].info.run_id), (44, others[1].info.run_id),
    ]  # fmt: skip
    # Each seed's value is its model's accuracy on the test rows, as its run logged it.
    assert judged[0]["value"] == report["comparison"]["challenger"]
    assert judged[0]["value"] == pytest.approx(report["test_metrics"]["accuracy"], abs=1e-6)
    for seed, child in zip(judged[1:], others, strict=True):
        assert seed["value"] == pytest.approx(child.data.metrics["test_accuracy"], abs=1e-12)
        assert seed["delta"] is None  # no champion: each must pass the floor
        assert seed["held"] == (seed["value"] >= 0.7)  # and nothing refuses it

    held = all(s["held"] for s in judged)
    decision = "promoted" if held else "kept"
    version_tags = tags(project, "1")
    assert version_tags["epochline.decision"] == report["comparison"]["decision"] == decision
    assert alias(project, "champion") == ("1" if held else None)
    figures = ", ".join(f"{s['value']:.4f}" for s in judged)
    reason = report["comparison"]["reason"]
    if held:
        assert reason.startswith(f"holds across 3 seeds: accuracy {figures}; no champion yet; ")
    else:
        assert reason.startswith("not across the seeds: seed ")
    assert version_tags["epochline.reason"] == reason and f"  reason: {reason}\n" in done.stdout
    assert version_tags["epochline.seeds"] == "; ".join(
        f"{s['seed']} {s['value']:.4f} {'held' if s['held'] else 'not held'}" for s in judged
    )
    run_tags = client.get_run(run_id).data.tags
    assert run_tags["epochline.retrain.seeds"] == version_tags["epochline.seeds"]
    markdown = (project / "reports/retrain/report.md").read_text()
    assert f"| 43 | {others[0].info.run_id} | {judged[1]['value']:.4f} |  |  |" in markdown
