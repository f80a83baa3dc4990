"""`epochline repro` stopped mid-training by a real SIGTERM, SIGKILL or Ctrl-C (SIGINT to
the process group): nothing runs on.

Before, the `dvc repro` child (and its train stage) ran on as orphans, writing outputs,
and the MLflow run stayed RUNNING.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from bench.project import set_params
from tests.conftest import copy_project, run, tool_env

pytestmark = pytest.mark.slow


def _processes_in(project: Path) -> list[int]:
    """Every process whose working directory is the project (the CLI, dvc, the stages)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")) == project:
                    found.append(int(entry.name))
            except OSError:
                continue  # gone, or not ours to read
    return found


# Still training when the signal comes: every epoch runs (no early stopping).
LONG = {"train": {"epochs": 100000, "patience": None}}


def _runs(project: Path) -> list[tuple[str, int]]:
    """(status, epochs logged) of every run, straight from the store."""
    if not (project / "mlflow.db").exists():
        return []
    with sqlite3.connect(project / "mlflow.db") as db:
        try:
            return db.execute(
                "SELECT r.status, (SELECT COUNT(*) FROM metrics m WHERE m.run_uuid = r.run_uuid"
                " AND m.key = 'val_loss') FROM runs r"
            ).fetchall()
        except sqlite3.OperationalError:  # the schema is still being created
            return []


def _wait(condition, what: str, timeout: float = 120) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
# DVC runs the stage through `$SHELL -c`: bash execs it, dash (/bin/sh, CI's shell where
# SHELL is unset) stays between DVC and the stage and runs on when DVC dies.
@pytest.mark.parametrize("shell", ["/bin/bash", "/bin/sh"], ids=["bash", "sh"])
def test_stopping_epochline_stops_dvc_and_the_stage_and_fails_the_run(
    tmp_path: Path, sig: signal.Signals, shell: str
) -> None:
    project = copy_project(tmp_path / "project", LONG).resolve()
    cli = subprocess.Popen(
        ["epochline", "repro"], cwd=project, env=tool_env(SHELL=shell),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait(lambda: any(n >= 2 for _, n in _runs(project)), "train to log epochs")
        cli.send_signal(sig)
        _wait(lambda: not _processes_in(project), "every process of the project to end", 60)
    finally:
        for pid in _processes_in(project):
            os.kill(pid, signal.SIGKILL)
    assert cli.wait(timeout=10) == (128 + sig if sig == signal.SIGTERM else -sig)
    assert not (project / "models/model.pt").exists()
    if sig == signal.SIGTERM:  # the stage's own handler closes the run
        assert [status for status, _ in _runs(project)] == ["FAILED"]
    # After a SIGKILL the stage still stops, but its run can stay RUNNING: the stage may
    # die writing to the dead pipe first. The next repro marks it KILLED (below).


@pytest.mark.parametrize("shell", ["/bin/bash", "/bin/sh"], ids=["bash", "sh"])
def test_ctrl_c_stops_every_process_and_fails_the_run(tmp_path: Path, shell: str) -> None:
    """Ctrl-C in a terminal: SIGINT to the whole foreground process group at once."""
    project = copy_project(tmp_path / "project", LONG).resolve()
    cli = subprocess.Popen(
        ["epochline", "repro"], cwd=project, env=tool_env(SHELL=shell),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # a group of its own, as a shell gives a foreground job
        # with Ctrl-C's default action: a job started in the background by a shell without
        # job control (`make test &`) inherits SIGINT ignored, and so would this one.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        _wait(lambda: any(n >= 2 for _, n in _runs(project)), "train to log epochs")
        os.killpg(cli.pid, signal.SIGINT)
        _wait(lambda: not _processes_in(project), "every process of the project to end", 60)
        _out, err = cli.communicate(timeout=10)
    finally:
        for pid in _processes_in(project):
            os.kill(pid, signal.SIGKILL)
    assert cli.returncode == 130, err  # the README's exit code for Ctrl-C
    assert err.strip().splitlines()[-1] == "error: interrupted", err
    assert "Traceback" not in err, err
    assert not (project / "models/model.pt").exists()
    assert [status for status, _ in _runs(project)] == ["FAILED"], err


def _stage(project: Path, name: str) -> int:
    """The pid of the stage process `python -m epochline.stages.<name>` in the project."""
    for pid in _processes_in(project):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"epochline.stages.{name}".encode() in argv:
            return pid
    raise AssertionError(f"no {name} stage runs in {project}")


def test_a_run_whose_process_was_killed_is_marked_killed_by_the_next_repro(
    tmp_path: Path,
) -> None:
    project = copy_project(tmp_path / "project", LONG).resolve()
    dvc = subprocess.Popen(
        ["dvc", "repro"], cwd=project, env=tool_env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait(lambda: any(n >= 2 for _, n in _runs(project)), "train to log epochs")
        os.kill(_stage(project, "train"), signal.SIGKILL)  # nothing in it can close the run
        assert dvc.wait(timeout=60) != 0
    finally:
        for pid in _processes_in(project):
            os.kill(pid, signal.SIGKILL)
    assert [status for status, _ in _runs(project)] == ["RUNNING"]  # for ever, until now

    set_params(project, {"train": {"epochs": 3}})
    done = run(["epochline", "repro"], project)
    assert "was left RUNNING by process" in done.stderr and "marked KILLED" in done.stderr
    assert sorted(status for status, _ in _runs(project)) == ["FINISHED", "KILLED"]
