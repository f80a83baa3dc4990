"""core/processes.py with real processes: /proc read right, SIGTERM first, SIGKILL after the
timeout, and never a signal to a pid that names another process now."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from epochline.core import processes

SLEEPS = "import time; print(1, flush=True); time.sleep(60)"
IGNORES_SIGTERM = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); " + SLEEPS


def test_read_stat_and_command_line_of_this_process() -> None:
    me = processes.read_stat(os.getpid())
    assert me is not None and me.parent == os.getppid() and me.pgid == os.getpgid(0)
    assert processes.command_line(os.getpid()) == [*sys.orig_argv, ""]  # NUL-terminated
    assert processes.read_stat(2**22 + 1) is None and processes.command_line(2**22 + 1) is None


def _started(code: str) -> subprocess.Popen[str]:
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                             start_new_session=True)  # fmt: skip
    assert child.stdout is not None and child.stdout.readline().strip() == "1"  # handler set
    return child


@pytest.mark.parametrize("group", [False, True])
def test_stop_child_kills_what_ignores_sigterm(group: bool) -> None:
    child = _started(IGNORES_SIGTERM)
    processes.stop_child(child, timeout_s=0.5, group=group)
    assert child.returncode == -9


def test_stop_pid_stops_a_process_and_spares_a_reused_pid() -> None:
    child = _started(SLEEPS)
    found = processes.read_stat(child.pid)
    assert found is not None
    assert not processes.stop_pid(child.pid, found.start_ticks + 1, timeout_s=1)  # not it
    assert child.poll() is None
    assert processes.stop_pid(child.pid, found.start_ticks, timeout_s=5, pgid=found.pgid)
    assert not processes.alive(child.pid, found.start_ticks)  # and reaped: no zombie left
