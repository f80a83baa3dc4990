"""What a retrain writes about the model it judged: the one writer of its tags (on the
version and on its run), its drift metrics and its report (run artifacts and on disk)."""

from __future__ import annotations

import time
from pathlib import Path

from mlflow.entities import Metric, RunTag
from mlflow.entities.model_registry import ModelVersion

from epochline.core.files import write_json, write_with
from epochline.retrain import report
from epochline.retrain.decision import Decision
from epochline.tracking.registry import Registry
from epochline.tracking.tags import RUN_TAG_PREFIX, Tag, tag_name, tag_values

REPORT_DIR = Path("reports/retrain")


def attempted(registry: Registry, run_id: str, when: str) -> None:
    """The first write of a retrain, and a harmless one: a user who may only read (basic
    auth gives a read-only user no write on the run, yet lets anyone create a registered
    model) is stopped here, before a model or a version exists."""
    registry.client.set_tag(run_id, tag_name(Tag.ATTEMPTED, RUN_TAG_PREFIX), when)


def unchanged(registry: Registry, known: ModelVersion, run_id: str) -> None:
    """The run's model is already version `known`: say which, on the run and the version."""
    registry.client.set_tag(run_id, tag_name(Tag.REGISTERED_VERSION), str(known.version))
    if known.run_id != run_id:  # the same model, trained again in another run
        registry.tag(str(known.version), {Tag.IDENTICAL_RUN: run_id})


def record(registry: Registry, decision: Decision, folder: Path = REPORT_DIR) -> None:
    """The decision on the challenger's version (its decision tag last), on its run (tags,
    drift metrics, retrain/report.json and .md), and in `folder` (the same report)."""
    values = decision.tags()
    registry.tag(decision.versions.challenger, values)
    now = int(time.time() * 1000)
    metrics = [Metric(key, value, now, 0) for key, value in decision.drift_metrics()]
    tags = [RunTag(k, v) for k, v in tag_values(values, RUN_TAG_PREFIX).items()]
    run_id = decision.provenance.run_id
    registry.client.log_batch(run_id, metrics=metrics, tags=tags)
    data, text = decision.as_json(), report.markdown(decision)
    registry.client.log_dict(run_id, data, "retrain/report.json")
    registry.client.log_text(run_id, text, "retrain/report.md")
    write_json(data, folder / "report.json")
    write_with(folder / "report.md", lambda tmp: tmp.write_text(text))
