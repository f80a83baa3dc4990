"""The stack's processes: started in sessions of their own (they outlive `up`), recorded in
the state dir as they start, and stopped by a later `down` (epochline.core.processes)."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from devtools.teamstack.base import PIDS_FILE, STOP_TIMEOUT_S, StackError, log_file, write_private
from epochline.core import processes


@dataclass(frozen=True)
class Proc:
    """A process the stack started. `start_ticks` tells it from a later one with the same pid."""

    name: str
    pid: int
    pgid: int
    start_ticks: int


def as_proc(name: str, pid: int) -> Proc:
    found = processes.read_stat(pid)
    if found is None or found.state == "Z":
        raise StackError(f"{name} (pid {pid}) exited right after starting")
    return Proc(name=name, pid=pid, pgid=os.getpgid(pid), start_ticks=found.start_ticks)


def alive(proc: Proc) -> bool:
    """Whether `proc` still runs; a pid reused by another process since does not count."""
    return processes.alive(proc.pid, proc.start_ticks)


def terminate(proc: Proc, timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """SIGTERM the process's group, wait, then SIGKILL. Never signals a pid reused since.

    True if it was running.
    """
    # The whole group: `mlflow server` runs uvicorn (and its job runner) as children.
    return processes.stop_pid(proc.pid, proc.start_ticks, timeout_s, proc.pgid, proc.name)


def spawn(state_dir: Path, name: str, cmd: list[str], env: dict[str, str]) -> Proc:
    """Start `cmd` in its own session (it outlives `up`), output to logs/NAME.log."""
    with log_file(state_dir, name) as out:
        child = subprocess.Popen(
            cmd, env=env, cwd=state_dir, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    started = as_proc(name, child.pid)
    record(state_dir, started)
    return started


def record(state_dir: Path, started: Proc) -> None:
    procs = [*recorded(state_dir), started]
    write_private(state_dir / PIDS_FILE, json.dumps([asdict(p) for p in procs], indent=1))


def recorded(state_dir: Path) -> list[Proc]:
    try:
        rows = json.loads((state_dir / PIDS_FILE).read_text())
    except FileNotFoundError:
        return []
    return [Proc(**row) for row in rows]
