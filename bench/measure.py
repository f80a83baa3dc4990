"""Run one child process and measure it: wall time, CPU time (user + sys), peak RSS.

`os.wait4` returns the child's own resource usage together with that of the children it
waited for (DVC's stage processes), so no psutil is needed. Linux reports ru_maxrss in KiB.
Python starts children with vfork, and a vfork child's peak RSS starts at its parent's:
the orchestrator therefore imports nothing heavy (no pandas, pyarrow or torch).
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


class ChildFailed(RuntimeError):
    """A measured command exited non-zero; the message holds the tail of its log."""


@dataclass(frozen=True)
class Usage:
    wall_s: float
    cpu_s: float
    peak_rss_mb: float

    def as_dict(self) -> dict[str, Any]:
        return {k: round(v, 4) for k, v in asdict(self).items()}


def measure(args: list[str], cwd: Path, env: dict[str, str], log: Path) -> Usage:
    """Run `args` to completion with its output in `log`; raise ChildFailed if it fails."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        start = time.perf_counter()
        child = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    if child.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise ChildFailed(f"{' '.join(args)} (in {cwd}) exited {child.returncode}:\n{tail}")
    return Usage(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)
