"""One scheduled retrain at a time: an OS file lock plus a note naming its holder."""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout

from epochline.core.errors import Skipped

log = logging.getLogger(__name__)


class LockBusy(Skipped):
    """Another retrain holds the lock (exit 75, EX_TEMPFAIL: a scheduler tries again later)."""


def _holder_file(path: Path) -> Path:
    return path.with_name(path.name + ".holder")


def _describe(holder: dict[str, object]) -> str:
    return f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}"


def _read_holder(path: Path) -> dict[str, object] | None:
    try:
        return dict(json.loads(_holder_file(path).read_text()))
    except (FileNotFoundError, json.JSONDecodeError, TypeError, ValueError):
        return None


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold `path` for the block, or raise LockBusy naming the holder.

    The OS drops the lock of a process that dies, so a dead holder never blocks; its
    note stays behind, and the next run reports that it took the stale lock over.
    """
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        holder = _read_holder(path)
        who = _describe(holder) if holder else "unknown holder"
        raise LockBusy(f"another retrain is running ({who}); lock {path}") from None
    try:
        stale = _read_holder(path)
        if stale is not None:
            log.warning(
                "took over stale lock %s left by %s, which ended without releasing it",
                path,
                _describe(stale),
            )
        note = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        _holder_file(path).write_text(json.dumps(note))
        yield
    finally:
        _holder_file(path).unlink(missing_ok=True)
        lock.release()
