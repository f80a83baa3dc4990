"""Processes by pid: what Linux's /proc says about one, and stopping one or its group
(SIGTERM, then SIGKILL after a timeout). The one place that reads /proc/<pid>."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_POLL_S = 0.2


@dataclass(frozen=True)
class ProcStat:
    """The fields of /proc/<pid>/stat that we use."""

    state: str  # R, S, …; Z: exited, not yet reaped by its parent
    parent: int
    pgid: int
    start_ticks: int  # since boot, in clock ticks: tells it from a later process with its pid


def read_stat(pid: int) -> ProcStat | None:
    """The process's /proc/<pid>/stat; None: no such process (or no /proc)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()  # the name in parentheses may hold spaces
    return ProcStat(
        state=fields[0], parent=int(fields[1]), pgid=int(fields[2]), start_ticks=int(fields[19])
    )


def command_line(pid: int) -> list[str] | None:
    """The process's argv; None: no such process (or no /proc)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [os.fsdecode(arg) for arg in raw.split(b"\0")]


def alive(pid: int, start_ticks: int) -> bool:
    """Whether the process that started at `start_ticks` still runs; a pid reused by another
    process since does not count. Our own exited child is reaped here."""
    found = read_stat(pid)
    if found is None or found.start_ticks != start_ticks:
        return False
    if found.state == "Z":
        with contextlib.suppress(ChildProcessError):  # not our child: its parent reaps it
            os.waitpid(pid, os.WNOHANG)
        return False
    return True


def _stop(
    send: Callable[[int], None], gone: Callable[[float], bool], timeout_s: float, what: str
) -> bool:
    """SIGTERM through `send`; SIGKILL if not `gone` within timeout_s. True: SIGTERM did."""
    send(signal.SIGTERM)
    if gone(timeout_s):
        return True
    log.warning("%s ignored SIGTERM for %.0f s: killing it", what, timeout_s)
    send(signal.SIGKILL)
    return False


def stop_child(proc: subprocess.Popen[Any], timeout_s: float, group: bool = False) -> None:
    """Stop a process we started, then reap it: SIGTERM, SIGKILL after timeout_s. With
    `group`, both go to its whole process group (it must lead one: start_new_session)."""

    def send(sig: int) -> None:
        if not group:
            proc.send_signal(sig)  # nothing once it has been reaped
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)

    def gone(timeout: float) -> bool:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    if _stop(send, gone, timeout_s, f"pid {proc.pid}") and group:
        send(signal.SIGKILL)  # its workers may outlive it, still holding the group id
    proc.wait()


def stop_pid(
    pid: int, start_ticks: int, timeout_s: float, pgid: int | None = None, name: str = "process"
) -> bool:
    """Stop a process that need not be our child (started by an earlier command): SIGTERM,
    SIGKILL after timeout_s; both to group `pgid` when given. Never signals a pid reused
    since `start_ticks` (read_stat's). True if it was running."""
    if not alive(pid, start_ticks):
        return False

    def send(sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            if pgid is None:
                os.kill(pid, sig)
            else:
                os.killpg(pgid, sig)

    def gone(timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not alive(pid, start_ticks):
                return True
            time.sleep(_POLL_S)
        return False

    _stop(send, gone, timeout_s, f"{name} (pid {pid})")
    return True
