"""A temporary project: the repo's tracked files, committed in a fresh git repo.

Stdlib and PyYAML only (see suite.py); the tests build their projects with it too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
# The venv's python, not resolve()d: a resolved symlink leaves the venv.
PYTHON = str(Path(sys.executable).absolute())


def child_env(**extra: str) -> dict[str, str]:
    """A user's shell after `source .venv/bin/activate`: no MLflow server, no DVC state."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_", "EPOCHLINE_"))
    }
    # Importing epochline set torch's and MKL's CPU variables in this process (numerics.py);
    # the user's shell has the values they had before.
    for key, value in json.loads(os.environ.get("EPOCHLINE_CPU_ENV_BEFORE") or "{}").items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    env.pop("PYTHONPATH", None)
    env["PATH"] = f"{Path(PYTHON).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        GIT_AUTHOR_NAME="epochline",
        GIT_AUTHOR_EMAIL="epochline@epochline.invalid",
        GIT_COMMITTER_NAME="epochline",
        GIT_COMMITTER_EMAIL="epochline@epochline.invalid",
        DVC_NO_ANALYTICS="1",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def floor_env() -> dict[str, str]:
    """The floors are modules of this package: they import it from the repo."""
    return child_env(PYTHONPATH=str(REPO))


def git(args: list[str], cwd: Path) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=child_env(), capture_output=True, text=True, check=True
    )
    return done.stdout


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        merged[key] = merge(base.get(key, {}), value) if isinstance(value, dict) else value
    return merged


def set_params(project: Path, overrides: dict[str, Any]) -> None:
    path = project / "params.yaml"
    merged = merge(yaml.safe_load(path.read_text()), overrides)
    path.write_text(yaml.safe_dump(merged, sort_keys=False))  # keep the order exp show uses


def copy_tracked(dest: Path) -> Path:
    """The repo's tracked files as a fresh clone has them, less a user's own data."""
    for rel in filter(None, git(["ls-files", "-z"], REPO).split("\0")):
        if rel.startswith(("data/incoming/", "data/external/")) and not rel.endswith(".gitkeep"):
            continue  # a user's own batches and sources are not a test's or benchmark's data
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def commit(project: Path, message: str) -> Path:
    """`project` as a new git repo holding one commit of everything in it."""
    git(["init", "-q", "-b", "main"], project)
    git(["add", "-A"], project)
    git(["commit", "-qm", message], project)
    return project


def copy_project(dest: Path, overrides: dict[str, Any]) -> Path:
    """The repo's tracked files, params overridden, committed."""
    set_params(copy_tracked(dest), overrides)
    return commit(dest, "bench project")
