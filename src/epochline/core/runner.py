"""What every entry point does around its work: logging, clean errors, signals."""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import select
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import NoReturn, TypeVar

from epochline.core import processes
from epochline.core.errors import DONE, FAILED, INTERRUPTED, TERMINATED, Skipped, UserError

log = logging.getLogger("epochline")
T = TypeVar("T")


def setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


_shielded = False
_deferred: int | None = None


def _terminate(signum: int, _frame: FrameType | None) -> None:
    # Raising lets `with mlflow.start_run()` close the run as FAILED instead of leaving it
    # RUNNING forever, which is what a bare SIGTERM (scheduler timeout, Ctrl-C in DVC) does.
    # Once: a stage often gets two (DVC passes one on, and Linux sends another when DVC
    # dies), and a second raised inside that cleanup would leave the run RUNNING after all.
    # Both: Ctrl-C's SIGINT is followed by SIGTERM when DVC dies.
    global _deferred
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if _shielded:
        _deferred = signum
        return
    raise SystemExit(128 + signum)


@contextmanager
def shielded() -> Iterator[None]:
    """A block a SIGTERM must not interrupt; the signal takes effect where it ends.

    MLflow's SQL store rolls a session back on an Exception, not on the SystemExit that
    SIGTERM raises: raised inside a store call, it leaves the SQLite transaction open,
    and closing the run as FAILED then fails with "database is locked".
    """
    global _shielded
    _shielded = True
    try:
        yield
    finally:
        _shielded = False
        if _deferred is not None:
            raise SystemExit(128 + _deferred)


def handle_sigterm() -> None:
    signal.signal(signal.SIGTERM, _terminate)


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def parent_death_signal() -> Callable[[], None] | None:
    """What asks Linux for SIGTERM when the parent process dies (None elsewhere): to call
    in a process itself, or in a child between fork and exec (`preexec_fn`). libc is looked
    up here, in the caller, so the forked child only makes the one system call.

    A stage whose `dvc repro` is killed, or a `dvc repro` whose `epochline` is, would
    otherwise run on as an orphan, writing outputs nobody waits for, its MLflow run left
    RUNNING; with the signal it stops as on any SIGTERM.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    return lambda: prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _die_with_parent() -> None:
    request = parent_death_signal()
    if request is None:
        return
    parent = os.getppid()
    request()
    if os.getppid() != parent:  # the parent died before the request took effect
        sys.exit(TERMINATED)
    if os.environ.get("DVC_STAGE") is not None and _is_shell_wrapper(parent):
        _watch(parent)


# DVC runs a stage's command through `$SHELL -c` (/bin/sh where SHELL is unset). bash and
# zsh exec the last command, so DVC is the stage's parent; dash (Debian's sh) stays in
# between, and a shell whose parent dies runs on. The stage then watches DVC itself.
_SHELLS = frozenset({"sh", "dash", "bash", "zsh", "fish", "ksh", "mksh"})


def _is_shell_wrapper(pid: int) -> bool:
    argv = processes.command_line(pid)
    return argv is not None and Path(argv[0]).name in _SHELLS and "-c" in argv[1:]


def _parent_of(pid: int) -> int | None:
    found = processes.read_stat(pid)
    return None if found is None else found.parent


def _watch(shell: int) -> None:
    """SIGTERM to this process when the shell's parent (DVC) exits."""
    launcher = _parent_of(shell)
    try:
        handle = None if launcher is None else os.pidfd_open(launcher)
    except ProcessLookupError:
        handle = None
    except OSError:  # a kernel before 5.3: no watch, as on other systems
        return
    if handle is None or _parent_of(shell) != launcher:
        sys.exit(TERMINATED)  # DVC died before the watch began

    def wait() -> None:
        select.select([handle], [], [])
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=wait, name="epochline-watch-dvc", daemon=True).start()


def _collect_from_here() -> None:
    """Python's cycle collector on, with everything made so far frozen out of its scans."""
    gc.freeze()
    gc.enable()


@contextmanager
def importing() -> Iterator[None]:
    """Heavy imports without the cycle collector (see stages/__init__.py); after them, what
    they made frozen out of its scans and the collector as it was."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_on:
            gc.enable()


def run_main(main: Callable[[], int | None]) -> NoReturn:
    """A stage's entry point: `main` under the one error policy (see guard)."""
    _collect_from_here()  # the stage's module imported with the collector off
    setup_logging()
    handle_sigterm()
    # Ctrl-C signals the whole process group, the stage under DVC included: stop as on
    # SIGTERM (once, never inside a store call), not with a KeyboardInterrupt raised in the
    # middle of MLflow's SQL session, which leaves the run RUNNING ("database is locked").
    signal.signal(signal.SIGINT, _terminate)
    _die_with_parent()
    try:
        sys.exit(guard(main) or DONE)
    finally:
        # What the stage made, out of the collection Python runs at exit: with torch and
        # MLflow loaded, that pass over the whole heap takes up to a second, to free memory
        # the exit frees anyway.
        gc.freeze()


def verdict(exc: BaseException) -> tuple[int, str] | None:
    """The exit code and the one line for `exc`; None for a bug (the traceback is what a
    developer needs) and for an exit already decided (SystemExit, e.g. 143 on SIGTERM)."""
    if isinstance(exc, Skipped):  # no `error:`: a log scanner must not page anyone for it
        return exc.exit_code, f"skipped: {exc}"
    if isinstance(exc, UserError):
        return exc.exit_code, f"error: {exc}"
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED, "error: interrupted"
    line = service_failure(exc) if isinstance(exc, Exception) else None
    return None if line is None else (FAILED, f"error: {line}")


def guard(work: Callable[[], T]) -> T:
    """Run `work` under the error policy of every stage and command: an error with a
    verdict becomes its one line on stderr and its exit code (errors.py lists them)."""
    try:
        return work()
    except BaseException as exc:
        found = verdict(exc)
        if found is None:
            raise
        code, line = found
        print(line, file=sys.stderr)
        raise SystemExit(code) from None


# Failures of the services a stage talks to (the tracking server, its HTTP client): the
# user fixes the service or the settings, so one line, not a traceback.
_SERVICE_MODULES = ("mlflow.", "requests.", "urllib3.")


def service_failure(exc: Exception) -> str | None:
    """The one line for a failed call to a service; None for anything else (a bug)."""
    if not type(exc).__module__.startswith(_SERVICE_MODULES):
        return None
    from epochline.tracking.store import describe_failure, tracking_uri  # mlflow is loaded by now

    return describe_failure(exc, tracking_uri())
