"""Running the tools a command drives (dvc, git): output passed through, one-line failures."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from epochline.core.errors import USER_ERROR, Failed
from epochline.core.processes import stop_child
from epochline.core.runner import parent_death_signal

# DVC ends every repro that ran a stage with this hint, remote or not.
PUSH_HINT = "Use `dvc push` to send your updates to remote storage."
STOP_TIMEOUT_S = 30  # from SIGTERM to SIGKILL


class ToolFailed(Failed):
    """A tool failed; exit 2 where DVC says the stage that failed exited with a user error."""

    def __init__(self, message: str, stage_code: int | None = None) -> None:
        super().__init__(message)
        if stage_code == USER_ERROR:
            self.exit_code = USER_ERROR


# DVC's line for a stage that failed: `failed to reproduce 'x': failed to run: …, exited with 2`
_STAGE_EXIT = re.compile(r"failed to run: .*, exited with (-?\d+)")


def run_tool(args: list[str], what: str, drop: tuple[str, ...] = (), quiet: bool = False) -> None:
    """Run a tool, passing its output through (less the lines in `drop`; none of it when
    `quiet`); fail with its own first error (with the indented lines that continue it) if
    it fails.

    The tool dies with this process: it gets SIGTERM when we are stopped, and from Linux
    when we die (killed, SIGKILL), instead of running on as an orphan.
    """
    # dvc.yaml's commands call `python`: make it this interpreter, also under cron/systemd.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    errors: list[str] = []
    with subprocess.Popen(
        args, env={**os.environ, "PATH": path}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=parent_death_signal(),
    ) as proc:  # fmt: skip
        try:
            _pass_through(proc.stdout or [], drop, errors, quiet)
        except BaseException:  # SIGTERM (as SystemExit) or Ctrl-C: stop the tool first
            stop_child(proc, STOP_TIMEOUT_S)
            raise
    if proc.returncode != 0:
        detail = errors[0] if errors else f"exited {proc.returncode}"
        codes = [int(m[1]) for m in map(_STAGE_EXIT.search, errors) if m]
        raise ToolFailed(f"{what} failed: {_ERROR_PREFIX.sub('', detail)}", *codes[:1])


_ERROR_PREFIX = re.compile(r"^error:\s*", re.IGNORECASE)


def _pass_through(
    lines: Iterable[str], drop: tuple[str, ...], errors: list[str], quiet: bool = False
) -> None:
    """Echo the tool's lines; collect its error lines, each with the indented lines that
    continue it (DVC's "is busy, it is being blocked by:" names the blocker on the next)."""
    continues = False
    for line in lines:
        if line.strip() in drop:
            continue
        if not quiet:
            sys.stderr.write(line)
        if line.lower().startswith("error"):
            errors.append(line.strip())
            continues = line.rstrip().endswith(":")
        elif continues and line[:1].isspace() and line.strip():
            errors[-1] += f" {line.strip()}"
        else:
            continues = False


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
