"""What a run records to be rebuilt, and who owns a RUNNING run: against a real git repo
and a real SQLite MLflow store."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import mlflow
import psutil
import pytest
from mlflow.tracking import MlflowClient

from bench.project import git
from epochline.tracking import provenance


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowClient]:
    root = tmp_path_factory.mktemp("store")
    uri, before = f"sqlite:///{root / 'mlflow.db'}", mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)  # where log_files logs: the active run's store
    client = MlflowClient(uri)
    client.create_experiment("provenance", artifact_location=(root / "artifacts").as_uri())
    yield client
    mlflow.set_tracking_uri(before)


def _experiment(client: MlflowClient) -> str:
    found = client.get_experiment_by_name("provenance")
    assert found is not None
    return str(found.experiment_id)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src/code.py").write_text("x = 1\n")
    (tmp_path / "params.yaml").write_text("train:\n  lr: 0.1\n")
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")
    git(["init", "-q", "-b", "main"], tmp_path)
    git(["add", "-A"], tmp_path)
    git(["commit", "-qm", "one"], tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_changed_params_are_not_dirty_changed_code_is_with_its_diff(repo: Path) -> None:
    (repo / "params.yaml").write_text("train:\n  lr: 0.2\n")  # recorded as a file instead
    assert provenance.code_changes() == ""
    (repo / "src/code.py").write_text("x = 2\n")
    diff = provenance.code_changes()
    assert diff is not None and "-x = 1" in diff and "+x = 2" in diff and "lr: 0.2" in diff


def test_not_a_git_tree_is_unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert provenance.code_changes() is None


def test_the_files_land_in_the_run(repo: Path, client: MlflowClient, tmp_path: Path) -> None:
    (repo / "src/code.py").write_text("x = 3\n")
    with mlflow.start_run(experiment_id=_experiment(client)) as run:
        provenance.log_files(provenance.code_changes())
    got = {
        a.path for a in client.list_artifacts(run.info.run_id, provenance.ARTIFACT_DIR)
    }  # fmt: skip
    assert got == {"provenance/params.yaml", "provenance/dvc.lock", "provenance/uncommitted.diff"}
    params = client.download_artifacts(run.info.run_id, "provenance/params.yaml", str(tmp_path))
    assert Path(params).read_text() == (repo / "params.yaml").read_text()


def test_environment_and_experiment_ref() -> None:
    tags = provenance.environment_tags()
    assert set(provenance.PACKAGES) <= {k.rsplit(".", 1)[-1] for k in tags}
    assert "+" not in tags["epochline.version.torch"]  # 2.13.0, not 2.13.0+cpu
    assert f"Python {sys.version_info.major}.{sys.version_info.minor}" in tags[
        "epochline.platform"
    ]  # fmt: skip
    assert provenance.exp_ref("fast", "abcdef12") == "refs/exps/ab/cdef12/fast"
    assert provenance.exp_ref("", "abcdef12") == ""
    recorded = {**tags, "epochline.version.numpy": "1.0.0"}
    assert provenance.version_differences(recorded) == [
        f"numpy 1.0.0 in the run, {provenance.package_versions()['numpy']} here"
    ]


def test_running_runs_whose_process_is_gone_are_marked_killed(client: MlflowClient) -> None:
    experiment = _experiment(client)
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    owner = psutil.Process(ended.pid)
    dead = {**provenance.process_tags(), "epochline.pid": str(ended.pid),
            "epochline.process_started": f"{owner.create_time():.2f}"}  # fmt: skip
    ended.wait()
    reused = {**provenance.process_tags(), "epochline.process_started": "1.00"}  # pid reused
    alive = provenance.process_tags()
    elsewhere = {**dead, "epochline.host": "another-host"}
    ids = {
        name: client.create_run(experiment, tags=tags).info.run_id
        for name, tags in [("dead", dead), ("reused", reused), ("alive", alive),
                           ("elsewhere", elsewhere), ("untagged", {})]
    }  # fmt: skip
    closed = provenance.close_dead_runs(client, experiment)
    assert sorted(closed) == sorted([ids["dead"], ids["reused"]])
    status = {name: client.get_run(run_id).info.status for name, run_id in ids.items()}
    assert status == {"dead": "KILLED", "reused": "KILLED", "alive": "RUNNING",
                      "elsewhere": "RUNNING", "untagged": "RUNNING"}  # fmt: skip
    assert os.getpid() == int(alive["epochline.pid"])
