"""Shared helpers: a real copy of this repo in a temporary git repo, run with the real tools."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

# First, before any test module imports torch: importing epochline chooses the CPU kernels
# torch loads with (numerics.py), as every entry point of the pipeline does.
import epochline  # noqa: F401  # isort: skip
import mlflow
import pytest
import yaml
from mlflow.tracking import MlflowClient
from mlflow.tracking._model_registry import utils as registry_uri
from mlflow.tracking._tracking_service import utils as tracking_uri

from bench.project import child_env, commit, copy_tracked, merge, set_params

REPO = Path(__file__).resolve().parents[1]
# A shrunk config: the real pipeline, in seconds rather than tens of seconds.
# Every epoch runs (no early stopping): tests count the steps logged.
SMALL = {"data": {"n_rows": 800}, "train": {"epochs": 30, "patience": None}}


@contextmanager
def _process_state_restored() -> Iterator[None]:
    """Whatever the block changes in this process is put back: os.environ (credentials that
    tracking/store.py or a test wrote there), MLflow's global tracking and registry URIs, the
    SIGTERM/SIGINT handlers the CLI installs, the working directory, the root logger.

    An xdist worker runs many test files in one process: without this, one file's store or
    credentials were the next file's defaults.
    """
    env = dict(os.environ)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    # The URIs as set (None where unset), not get_tracking_uri()'s resolved default.
    uris = tracking_uri._tracking_uri, registry_uri._registry_uri
    cwd = os.getcwd()
    root = logging.getLogger()
    logging_state = root.level, list(root.handlers)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(uris[0])  # type: ignore[arg-type]  # None unsets it
        mlflow.set_registry_uri(uris[1])  # type: ignore[arg-type]
        os.environ.clear()  # after the URIs: setting them writes MLFLOW_* variables
        os.environ.update(env)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        os.chdir(cwd)
        root.setLevel(logging_state[0])
        root.handlers[:] = logging_state[1]


@pytest.fixture(autouse=True, scope="module")
def _module_leaves_the_process_as_it_found_it() -> Iterator[None]:
    with _process_state_restored():  # what module-scoped fixtures change
        yield


@pytest.fixture(autouse=True)
def _test_leaves_the_process_as_it_found_it() -> Iterator[None]:
    with _process_state_restored():
        yield


# Tools the tests need from the system, which a run may require: a comma-separated list of
# chromium, postgres, systemd-analyze, shellcheck, node. CI (.ci/run) installs and requires
# them all.
REQUIRE = "EPOCHLINE_REQUIRE"


def required_tools() -> set[str]:
    return {t.strip() for t in os.environ.get(REQUIRE, "").split(",") if t.strip()}


def missing_tool(tool: str, install: str) -> NoReturn:
    """A test's system tool is not here: a skip on a developer's machine, a failure where
    the run requires it ($EPOCHLINE_REQUIRE), so that CI cannot pass without running it."""
    if tool in required_tools():
        pytest.fail(
            f"{tool} is missing and {REQUIRE}={os.environ[REQUIRE]} requires it: {install}",
            pytrace=False,
        )
    pytest.skip(f"{tool} is missing ({install}); {REQUIRE}={tool} makes this a failure")


# The environment a user has after `source .venv/bin/activate`, with no MLflow server.
tool_env = child_env


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


def copy_project(dest: Path, overrides: dict[str, Any] | None = None, shrink: bool = True) -> Path:
    """The repo's tracked files (as a fresh clone has them), committed in a new git repo.

    `shrink` applies the SMALL config; without it the project runs on the real defaults.
    """
    copy_tracked(dest)
    if shrink or overrides:
        set_params(dest, merge(SMALL if shrink else {}, overrides or {}))
    return commit(dest, "test project")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(tmp_path / "project")


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Path]:
    def make(name: str = "project", **overrides: Any) -> Path:
        return copy_project(tmp_path / name, overrides)

    return make


def _uncached_outputs(project: Path) -> list[str]:
    """The stage outputs dvc.yaml marks `cache: false`: `dvc checkout` cannot bring them back."""
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    return [
        path
        for stage in stages.values()
        for kind in ("outs", "metrics", "plots")
        for entry in stage.get(kind, [])
        if isinstance(entry, dict)
        for path, options in entry.items()
        if (options or {}).get("cache") is False
    ]


@contextmanager
def workspace_restored(project: Path) -> Iterator[None]:
    """What the block does to the workspace (a `dvc exp run` applies its params, dvc.lock
    and outputs) is put back: a module's shared project stays as its fixture made it."""
    names = ["params.yaml", "dvc.lock", *_uncached_outputs(project)]
    kept = {n: (project / n).read_bytes() if (project / n).exists() else None for n in names}
    try:
        yield
    finally:
        for name in ("params.yaml", "dvc.lock"):
            (project / name).write_bytes(kept.pop(name) or b"")
        run(["dvc", "checkout", "--force"], project)  # the cached outputs dvc.lock names
        for name, data in kept.items():
            if data is None:
                (project / name).unlink(missing_ok=True)
            else:
                (project / name).write_bytes(data)


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
