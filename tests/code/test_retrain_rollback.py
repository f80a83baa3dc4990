"""`epochline rollback` as retrain/loop.py runs it, against a real SQLite MLflow store in a
project folder: the champion moves back, a registry with nowhere to go back to is left as it
was, and a rollback never runs beside a retrain."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from epochline.retrain import loop
from epochline.retrain.lock import LockBusy, exclusive
from epochline.tracking.registry import CHAMPION, PREVIOUS, Registry, Tag
from epochline.tracking.tags import PROMOTED

NAME = "epochline-classifier"  # params.yaml's default registered_model_name


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with default params.yaml, the working directory, its store mlflow.db."""
    (tmp_path / "params.yaml").write_text("{}\n")
    monkeypatch.chdir(tmp_path)
    for name in ("MLFLOW_TRACKING_URI", "DVC_ROOT"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _registry(project: Path, champion: int, previous: int | None) -> Registry:
    """Versions 1..champion, each promoted over the one before, and the two aliases."""
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.create_experiment("e", artifact_location=(project / "a").as_uri())
    run_id = client.create_run(experiment).info.run_id
    registry = Registry(client, NAME)
    for n in range(1, champion + 1):
        registry.register(f"file:///models/{n}", run_id, f"digest-{n}")
        replaced = {Tag.REPLACED_VERSION: str(n - 1)} if n > 1 else {}
        registry.tag(str(n), {Tag.DECISION: PROMOTED, **replaced})
    client.set_registered_model_alias(NAME, CHAMPION, str(champion))
    if previous is not None:
        client.set_registered_model_alias(NAME, PREVIOUS, str(previous))
    return registry


def test_rollback_restores_the_previous_champion_and_says_so(project: Path) -> None:
    registry = _registry(project, champion=3, previous=2)
    said = loop.rollback("drifted")
    assert said == "rollback: champion v3 -> v2; previous-champion v1; reason: drifted"
    assert str(registry.alias(CHAMPION).version) == "2"
    assert str(registry.alias(PREVIOUS).version) == "1"


def test_rollback_with_no_previous_champion_changes_nothing(project: Path) -> None:
    registry = _registry(project, champion=1, previous=None)
    with pytest.raises(loop.RetrainFailed) as failed:
        loop.rollback("drifted")
    assert str(failed.value) == (
        f"rollback of {NAME}: needs both a champion and a previous-champion; nothing changed"
    )
    assert str(registry.alias(CHAMPION).version) == "1"


def test_rollback_waits_for_no_retrain_it_refuses(project: Path) -> None:
    registry = _registry(project, champion=2, previous=1)
    with exclusive(project / ".epochline-retrain.lock"), pytest.raises(LockBusy):
        loop.rollback("drifted")  # a retrain holds the lock: it may be promoting
    assert str(registry.alias(CHAMPION).version) == "2"
