"""`python -m devtools.teamstack up|env|down [--dir DIR]`: what a person types."""

from __future__ import annotations

import argparse
import logging
import shlex
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from devtools.teamstack.base import ADMIN, PIDS_FILE, VIEWER, StackError
from devtools.teamstack.stack import Stack, load, running, start, stop

log = logging.getLogger(__name__)


def _exports(stack: Stack) -> Iterator[str]:
    for key, value in stack.user_env().items():
        yield f"export {key}={shlex.quote(value)}"


def _up(state_dir: Path) -> None:
    started = time.monotonic()
    stack = start(state_dir)
    lines = [
        f"# team stack up in {time.monotonic() - started:.1f} s; state, logs and the "
        f"{ADMIN}/{VIEWER} credentials in {stack.state_dir}",
        *_exports(stack),
        "# then, in the DVC repo (the AWS_* keys above are the remote's credentials):",
        *(f"#   {cmd}" for cmd in stack.dvc_remote_commands()),
        f"# stop: python -m devtools.teamstack down --dir {state_dir}",
    ]
    print("\n".join(lines))


def _env(state_dir: Path) -> None:
    stack = load(state_dir)
    if not running(stack):
        raise StackError(
            f"the team stack in {state_dir} is not running: "
            f"`python -m devtools.teamstack down --dir {state_dir}`, then `up` again"
        )
    print("\n".join(_exports(stack)))


def _down(state_dir: Path) -> None:
    if not state_dir.exists():
        log.info("no team stack in %s: nothing to stop", state_dir)
        return
    if not (state_dir / PIDS_FILE).exists():  # `down --dir .` must not delete a checkout
        raise StackError(f"{state_dir} holds no team stack (no {PIDS_FILE}): not deleting it")
    started = time.monotonic()
    stop(state_dir)
    shutil.rmtree(state_dir)
    log.info("team stack in %s stopped and deleted (%.1f s)", state_dir, time.monotonic() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.teamstack",
        description="A local team stack: PostgreSQL, S3 (moto) and MLflow with basic auth.",
    )
    parser.add_argument("command", choices=["up", "down", "env"])
    parser.add_argument("--dir", type=Path, default=Path(".team"), help="state dir (.team)")
    args = parser.parse_args(argv)
    {"up": _up, "down": _down, "env": _env}[args.command](args.dir)
    return 0
