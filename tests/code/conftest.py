"""Fixtures for the fast, offline code tier: subprocesses that run like a user's shell."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

# absolute(), not resolve(): the venv's python is a symlink, and resolving it leaves the venv.
# Taken at collection, while the cwd is still the repo root (PATH may hold `.venv/bin`).
PYTHON = str(Path(sys.executable).absolute())
VENV_BIN = Path(PYTHON).parent

StageRunner = Callable[[str, Path], subprocess.CompletedProcess[str]]


@pytest.fixture
def user_env() -> dict[str, str]:
    """The environment `make` gives the stages: the venv's bin first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONPATH", None)
    return env


@pytest.fixture
def run_stage(user_env: dict[str, str]) -> StageRunner:
    """Run `python -m epochline.stages.<name>` in `cwd`, as dvc.yaml's `cmd` does."""

    def run(name: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["python", "-m", f"epochline.stages.{name}"],
            cwd=cwd,
            env=user_env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


def write_params(folder: Path, raw: object) -> Path:
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


CHECK_JSONSCHEMA = Path(sys.executable).absolute().parent / "check-jsonschema"


def check_workflow(path: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema against GitHub's workflow schema, which ships inside it: offline."""
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def load_workflow(path: Path) -> dict[Any, Any]:
    doc: dict[Any, Any] = yaml.safe_load(path.read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the bare key `on` as True
    return doc
