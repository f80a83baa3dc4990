"""What `epochline reproduce` refuses before it rebuilds anything, against a real SQLite
MLflow store in a project folder: a target that is no run, a run the store lacks, a run that
never finished, and a run made from uncommitted code (named by its run id or its alias)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from epochline.core.errors import UserError
from epochline.reproduce import CannotRebuild, reproduce
from epochline.tracking import store
from epochline.tracking.registry import CHAMPION, Registry

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """One project folder and store for the module (its schema takes seconds): runs by role."""
    root = tmp_path_factory.mktemp("reproduce")
    (root / "params.yaml").write_text("{}\n")
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.create_experiment("e", artifact_location=(root / "a").as_uri())
    unfinished = client.create_run(experiment, tags={store.TAG_GIT_COMMIT: COMMIT})
    dirty = client.create_run(experiment, tags={
        store.TAG_GIT_COMMIT: COMMIT, store.TAG_GIT_DIRTY: "true",
        store.TAG_MODEL_URI: "models:/m-0123", store.TAG_MODEL_DIGEST: "d" * 16,
    })  # fmt: skip
    registry = Registry(client, "dirty-model")
    registry.register("file:///models/1", dirty.info.run_id, "d" * 16)
    client.set_registered_model_alias(registry.name, CHAMPION, "1")
    return root, {"unfinished": unfinished.info.run_id, "dirty": dirty.info.run_id}


@pytest.fixture
def runs(folder: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    root, ids = folder
    monkeypatch.chdir(root)
    for name in ("MLFLOW_TRACKING_URI", "DVC_ROOT"):
        monkeypatch.delenv(name, raising=False)
    return ids


def test_a_target_that_names_no_run_is_refused_before_anything_runs() -> None:
    with pytest.raises(UserError) as refused:
        reproduce("not-a-run")
    assert str(refused.value) == (
        "reproduce: 'not-a-run' is not a run id (32 hex digits), runs:/ID, "
        "models:/NAME/VERSION or models:/NAME@ALIAS"
    )


def test_a_run_the_store_lacks_names_the_store(runs: dict[str, str]) -> None:
    missing = "f" * 32
    with pytest.raises(UserError) as refused:
        reproduce(f"runs:/{missing}/model")
    message = str(refused.value)
    assert message.startswith(f"reproduce: runs:/{missing}/model not found in sqlite:///")
    assert message.count("\n") == 0


def test_a_run_that_never_finished_holds_no_model(runs: dict[str, str]) -> None:
    with pytest.raises(CannotRebuild) as refused:
        reproduce(runs["unfinished"])
    assert str(refused.value) == (
        f"reproduce: run {runs['unfinished']} holds no model: it never finished"
    )


@pytest.mark.parametrize(
    "target", ["dirty", "models:/dirty-model@champion", "models:/dirty-model/1"]
)
def test_a_run_from_uncommitted_code_cannot_be_rebuilt(runs: dict[str, str], target: str) -> None:
    with pytest.raises(CannotRebuild) as refused:
        reproduce(runs.get(target, target))
    message = str(refused.value)
    assert message.startswith(f"reproduce: run {runs['dirty']} cannot be rebuilt: dirty tree")
    assert f"from commit {COMMIT[:12]}" in message
