"""Running the tools a command drives (dvc, git): output passed through, one-line failures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from epochline.errors import UserError

# DVC ends every repro that ran a stage with this hint, remote or not.
PUSH_HINT = "Use `dvc push` to send your updates to remote storage."


class ToolFailed(UserError):
    exit_code = 1


def run_tool(args: list[str], what: str, drop: tuple[str, ...] = ()) -> None:
    """Run a tool, passing its output through (less the lines in `drop`); fail with its own
    first error line if it fails."""
    # dvc.yaml's commands call `python`: make it this interpreter, also under cron/systemd.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    errors: list[str] = []
    with subprocess.Popen(
        args, env={**os.environ, "PATH": path}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    ) as proc:  # fmt: skip
        for line in proc.stdout or []:
            if line.strip() in drop:
                continue
            sys.stderr.write(line)
            if line.lower().startswith("error"):
                errors.append(line.strip())
    if proc.returncode != 0:
        detail = errors[0] if errors else f"exited {proc.returncode}"
        raise ToolFailed(f"{what} failed: {detail.removeprefix('error: ')}")


def dvc_remote() -> str | None:
    """The default DVC remote's name, or None when none is configured."""
    done = subprocess.run(
        [sys.executable, "-m", "dvc", "remote", "default"], capture_output=True, text=True
    )
    name = done.stdout.strip()
    return name if done.returncode == 0 and name else None


def dvc_repro(*args: str) -> str | None:
    """`dvc repro [args]`, without DVC's `dvc push` hint where no remote is configured.

    Returns the default remote's name (None: no remote).
    """
    remote = dvc_remote()
    drop = () if remote else (PUSH_HINT,)
    run_tool([sys.executable, "-m", "dvc", "repro", *args], "pipeline (dvc repro)", drop)
    return remote
