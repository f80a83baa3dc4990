"""The Makefile's promises that need no venv: `make clean` removes what the tools generate."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from epochline.core import paths

REPO = Path(__file__).resolve().parents[2]

# Every DVC-cached output (paths.py lists them; test_stage_deps checks that against dvc.yaml),
# and what the tools write; the git-tracked outputs stay.
GENERATED = [
    *(str(p) for p in paths.CACHED_OUTPUTS),
    "mlflow.db", "mlartifacts/1/x", "dvc_plots/index.html",
    "reports/retrain/report.md", ".epochline-retrain.lock", ".epochline-retrain.lock.holder",
    "bench/results/bench.json", "predictions/test.csv",
]  # fmt: skip
KEPT = [*(str(p) for p in paths.TRACKED_OUTPUTS), "params.yaml", "dvc.lock"]


def test_make_clean_removes_generated_files_and_keeps_tracked_ones(tmp_path: Path) -> None:
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    for rel in GENERATED + KEPT:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    done = subprocess.run(["make", "clean"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert [rel for rel in GENERATED if (tmp_path / rel).exists()] == []
    assert all((tmp_path / rel).exists() for rel in KEPT)


def test_generated_files_are_git_ignored() -> None:
    # What the README's commands write: none of it may reach a `git add -A`.
    names = ["dvc_plots/index.html", "mlflow.db", "mlartifacts/x", ".epochline-retrain.lock",
             "bench/results/bench.md", "predictions/test.csv", "reports/retrain/report.md",
             ".team/state.json", ".dvc/config.local", ".dvc/tmp/exps/x"]  # fmt: skip
    done = subprocess.run(
        ["git", "check-ignore", "--no-index", *names], cwd=REPO, capture_output=True, text=True
    )
    assert sorted(done.stdout.split()) == sorted(names)


# --- which Python `make setup` makes .venv with -----------------------------------------

FAKE_PYTHON = """#!/bin/sh
# A stand-in that answers the version check, and records a `-m venv` without making one.
case "$1" in
  -c) echo {version} ;;
  -m) echo "${{0##*/}} $*" >> "{log}"; exit 3 ;;
esac
"""


def _fake_pythons(tmp_path: Path, versions: dict[str, str]) -> Path:
    """A folder of fake Python commands, each printing its version; the PATH of a test."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, version in versions.items():
        fake = bin_dir / name
        fake.write_text(FAKE_PYTHON.format(version=version, log=tmp_path / "venv.log"))
        fake.chmod(0o755)
    return bin_dir


def _setup(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`make setup` in a project holding only the Makefile and its helper; PATH: the fakes."""
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "Makefile", project / "Makefile")
    shutil.copy(REPO / "scripts" / "find-python.sh", project / "scripts" / "find-python.sh")
    for name in ("requirements.lock", "pyproject.toml"):
        (project / name).touch()
    make = shutil.which("make")
    assert make is not None
    env = {"PATH": str(tmp_path / "bin"), "HOME": str(tmp_path)}
    return subprocess.run(
        [make, "setup", *args], cwd=project, env=env, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    ("versions", "args", "chosen"),
    [
        # Debian 13: no python3.11; python3 is 3.13.
        ({"python3.13": "3.13", "python3": "3.13"}, (), "python3.13"),
        # Ubuntu 24.04: a python3.11 that is not 3.11 is skipped for the next one.
        ({"python3.11": "3.10", "python3.12": "3.12"}, (), "python3.12"),
        ({"python3": "3.14"}, (), "python3"),
        ({"python3.11": "3.11", "mypython": "3.12"}, ("PYTHON=mypython",), "mypython"),
    ],
)
def test_setup_makes_the_venv_with_the_first_python_3_11_or_newer(
    tmp_path: Path, versions: dict[str, str], args: tuple[str, ...], chosen: str
) -> None:
    _fake_pythons(tmp_path, versions)
    done = _setup(tmp_path, *args)
    assert done.returncode != 0  # the fake makes no venv, so setup stops after it
    assert (tmp_path / "venv.log").read_text() == f"{chosen} -m venv .venv\n"


@pytest.mark.parametrize("args", [(), ("PYTHON=python3",)])
def test_setup_without_a_python_3_11_says_so_in_one_line(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    _fake_pythons(tmp_path, {"python3": "3.9"})
    done = _setup(tmp_path, *args)
    assert done.returncode != 0
    assert not (tmp_path / "venv.log").exists()
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr
    assert "needs Python 3.11 or newer" in errors[0] and "python3 is 3.9" in errors[0]
    assert "PYTHON=" in errors[0]
