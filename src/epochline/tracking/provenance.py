"""What a run records so that it can be rebuilt (`epochline reproduce`), and whose it is.

Tags: the package versions that decide the bits, the platform, the DVC experiment ref,
and the process that owns the run while it is RUNNING (host, pid, start time). Artifacts
under `provenance/`: params.yaml and dvc.lock as the stage read them, and the uncommitted
changes to tracked code when there are any.
"""

from __future__ import annotations

import logging
import platform
import socket
import subprocess
from importlib.metadata import version
from pathlib import Path

import mlflow
import psutil
from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

from epochline.tracking.tags import (
    TAG_CPU_CAPABILITY,
    TAG_DEVICE,
    TAG_HOST,
    TAG_PID,
    TAG_PLATFORM,
    TAG_STARTED,
    VERSION_TAG,
)

log = logging.getLogger(__name__)

# The packages whose version can change the weights or how they are stored and found.
PACKAGES = ("torch", "numpy", "mlflow", "dvc")
ARTIFACT_DIR = "provenance"
PARAMS_FILE, LOCK_FILE, DIFF_FILE = "params.yaml", "dvc.lock", "uncommitted.diff"
# What decides the model besides params.yaml and the data: the code and the environment.
CODE = ("src", "dvc.yaml", "pyproject.toml", "requirements.lock")


def release(package: str) -> str:
    """The installed release without a local label: 2.13.0, not 2.13.0+cpu (the build is
    the platform's, and an index serves torch==2.13.0, not +cpu)."""
    return version(package).split("+")[0]


def package_versions() -> dict[str, str]:
    return {pkg: release(pkg) for pkg in PACKAGES}


def environment_tags() -> dict[str, str]:
    tags = {VERSION_TAG.format(pkg): v for pkg, v in package_versions().items()}
    tags[TAG_PLATFORM] = (
        f"{platform.system()} {platform.machine()}, Python {platform.python_version()}"
    )
    return tags


def hardware_tags(device: str) -> dict[str, str]:
    """The device that trained (`cuda:0 NVIDIA H200`, `cpu`) and torch's CPU kernels
    (DEFAULT under portable numerics; AVX2, AVX512 under fast ones, by the CPU)."""
    import torch  # loaded by now: the train stage calls this

    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else ""
    return {
        TAG_DEVICE: f"{device} {name}".strip(),
        TAG_CPU_CAPABILITY: torch.backends.cpu.get_cpu_capability(),
    }


def exp_ref(name: str, baseline: str) -> str:
    """The git ref DVC keeps an experiment's commit under (`dvc exp show` lists them)."""
    return f"refs/exps/{baseline[:2]}/{baseline[2:]}/{name}" if name else ""


def _started(process: psutil.Process) -> str:
    return f"{process.create_time():.2f}"


def process_tags() -> dict[str, str]:
    """Who owns the run while it runs: a RUNNING run whose process is gone was killed."""
    me = psutil.Process()
    return {TAG_HOST: socket.gethostname(), TAG_PID: str(me.pid), TAG_STARTED: _started(me)}


def git(*args: str) -> str | None:
    """git's output, as it printed it; None where git fails or is missing."""
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout


def code_changes() -> str | None:
    """The uncommitted changes to tracked code and params ('' none; None: not a git tree)."""
    status = git("status", "--porcelain", "--untracked-files=no", "--", *CODE)
    if status is None:
        return None
    if not status.strip():
        return ""
    return git("diff", "HEAD", "--", *CODE, "params.yaml") or ""


def log_files(changes: str | None) -> None:
    """params.yaml and dvc.lock as they are now (train reads the first; the second holds
    the hashes of the data that the stages before train made), and the diff if any."""
    for name in (PARAMS_FILE, LOCK_FILE):
        path = Path(name)
        if path.is_file():
            mlflow.log_text(path.read_text(), f"{ARTIFACT_DIR}/{name}")
    if changes:
        mlflow.log_text(changes, f"{ARTIFACT_DIR}/{DIFF_FILE}")


def _gone(tags: dict[str, str]) -> bool:
    """Whether the process that owned a run has ended (False when it may still run)."""
    try:
        pid, started = int(tags[TAG_PID]), tags[TAG_STARTED]
    except (KeyError, ValueError):
        return False  # not ours to judge: logged before these tags, or by another tool
    try:
        return _started(psutil.Process(pid)) != started  # the pid now names another process
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False


def close_dead_runs(client: MlflowClient, experiment_id: str) -> list[str]:
    """Mark KILLED the RUNNING runs of this host whose process is gone (a SIGKILL, a power
    cut: nothing in the process could close them). Runs of other hosts are left alone."""
    host = socket.gethostname().replace("'", "")
    running = client.search_runs(
        [experiment_id],
        filter_string=f"attributes.status = 'RUNNING' and tags.`{TAG_HOST}` = '{host}'",
    )
    dead = [run for run in running if _gone(run.data.tags)]
    for run in dead:
        client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.KILLED))
        log.warning(
            "run %s (%s) was left RUNNING by process %s, which is gone: marked KILLED",
            run.info.run_name, run.info.run_id, run.data.tags[TAG_PID],
        )  # fmt: skip
    return [run.info.run_id for run in dead]


def version_differences(recorded: dict[str, str]) -> list[str]:
    """`torch 2.12.0 in the run, 2.13.0 here`, for each package that differs."""
    here = package_versions()
    return [
        f"{pkg} {recorded[VERSION_TAG.format(pkg)]} in the run, {here[pkg]} here"
        for pkg in PACKAGES
        if VERSION_TAG.format(pkg) in recorded and recorded[VERSION_TAG.format(pkg)] != here[pkg]
    ]
