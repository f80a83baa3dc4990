"""Shared helpers: a real copy of this repo in a temporary git repo, run with the real tools."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow
import pytest
import yaml
from mlflow.tracking import MlflowClient

REPO = Path(__file__).resolve().parents[1]
# A shrunk config: the real pipeline, in seconds rather than tens of seconds.
SMALL = {"data": {"n_rows": 800}, "train": {"epochs": 30}}


def tool_env(**extra: str) -> dict[str, str]:
    """The environment a user has after `source .venv/bin/activate`, with no MLflow server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        GIT_AUTHOR_NAME="epochline tests",
        GIT_AUTHOR_EMAIL="tests@epochline.invalid",
        GIT_COMMITTER_NAME="epochline tests",
        GIT_COMMITTER_EMAIL="tests@epochline.invalid",
        DVC_NO_ANALYTICS="1",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def run(
    args: list[str], cwd: Path, check: bool = True, **env: str
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        args, cwd=cwd, env=tool_env(**env), capture_output=True, text=True, timeout=600
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
        )
    return done


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        merged[key] = _merge(base.get(key, {}), value) if isinstance(value, dict) else value
    return merged


def set_params(project: Path, overrides: dict[str, Any]) -> None:
    path = project / "params.yaml"
    merged = _merge(yaml.safe_load(path.read_text()), overrides)
    path.write_text(yaml.safe_dump(merged, sort_keys=False))  # keep the order exp show uses


def copy_project(dest: Path, overrides: dict[str, Any] | None = None, shrink: bool = True) -> Path:
    """The repo's tracked files (as a fresh clone has them), committed in a new git repo.

    `shrink` applies the SMALL config; without it the project runs on the real defaults.
    """
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for rel in filter(None, tracked):
        if rel.startswith(("data/incoming/", "data/external/")) and not rel.endswith(".gitkeep"):
            continue  # the user's own batches and sources are not the tests' data
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    if shrink or overrides:
        set_params(dest, _merge(SMALL if shrink else {}, overrides or {}))
    run(["git", "init", "-q", "-b", "main"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-qm", "test project"], dest)
    return dest


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(tmp_path / "project")


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Path]:
    def make(name: str = "project", **overrides: Any) -> Path:
        return copy_project(tmp_path / name, overrides)

    return make


def store(project: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{project / 'mlflow.db'}")


def trained_run(project: Path, experiment_name: str = "epochline") -> mlflow.entities.Run:
    """The run holding the model train last wrote, found as models/model.json describes it."""
    info = json.loads((project / "models/model.json").read_text())
    client = store(project)
    experiment = client.get_experiment_by_name(experiment_name)
    assert experiment is not None, "experiment 'epochline' was not created"
    found = [
        r
        for r in client.search_runs([experiment.experiment_id])
        if r.data.tags.get("epochline.train_key") == info["train_key"]
        and r.data.tags.get("epochline.model_digest") == info["model_digest"]
    ]
    assert len(found) == 1, f"{len(found)} runs hold model {info['model_digest']}"
    return found[0]
