"""One retrain at a time, across real processes: busy, stale and released locks."""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from epochline.core.errors import UserError
from epochline.retrain.lock import LockBusy, exclusive

# Each holder takes the lock named by argv[1]; argv[2] says how it leaves the block.
HOLDER = """
import os, signal, sys, time
from pathlib import Path
from epochline.retrain.lock import exclusive

with exclusive(Path(sys.argv[1])):
    print("held", flush=True)
    if sys.argv[2] == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif sys.argv[2] == "sleep":
        time.sleep(60)
print("released", flush=True)
"""


def _holder(lock: Path, how: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock), how],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_line(proc: subprocess.Popen[str], expected: str, timeout: float = 20) -> None:
    # select() before readline(), so a holder that hangs fails the test instead of blocking it.
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], deadline - time.monotonic())
        if not ready:
            break
        line = proc.stdout.readline()
        if line.strip() == expected:
            return
        if not line:  # EOF: the holder ended before saying it
            break
    proc.kill()
    _, err = proc.communicate()
    pytest.fail(f"holder never printed {expected!r}; rc {proc.returncode}, stderr:\n{err}")


@pytest.fixture
def lock(tmp_path: Path) -> Path:
    return tmp_path / "retrain.lock"


@pytest.fixture
def sleeping_holder(lock: Path) -> Iterator[subprocess.Popen[str]]:
    proc = _holder(lock, "sleep")
    try:
        _wait_for_line(proc, "held")
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def _note(lock: Path) -> Path:
    return lock.with_name(lock.name + ".holder")


def test_lock_busy_is_a_user_error_with_tempfail_code() -> None:
    assert issubclass(LockBusy, UserError)
    assert LockBusy.exit_code == 75


def test_busy_lock_names_its_holder(lock: Path, sleeping_holder: subprocess.Popen[str]) -> None:
    with pytest.raises(LockBusy) as caught, exclusive(lock):
        pytest.fail("took a lock another process holds")
    message = str(caught.value)
    assert f"pid {sleeping_holder.pid}" in message
    assert "started" in message
    assert str(lock) in message
    assert json.loads(_note(lock).read_text())["pid"] == sleeping_holder.pid  # note untouched


def test_lock_is_free_once_the_holder_is_killed(
    lock: Path, sleeping_holder: subprocess.Popen[str]
) -> None:
    with pytest.raises(LockBusy), exclusive(lock):
        pass
    sleeping_holder.kill()
    sleeping_holder.wait(timeout=10)
    with exclusive(lock):
        assert json.loads(_note(lock).read_text())["pid"] == os.getpid()
    assert not _note(lock).exists()


def test_stale_lock_of_a_killed_holder_is_taken_over(
    lock: Path, caplog: pytest.LogCaptureFixture
) -> None:
    proc = _holder(lock, "sigkill")
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == -signal.SIGKILL, err
    dead = json.loads(_note(lock).read_text())
    assert dead["pid"] == proc.pid  # the note outlives its holder

    with caplog.at_level(logging.WARNING, logger="epochline.retrain.lock"), exclusive(lock):
        assert json.loads(_note(lock).read_text())["pid"] == os.getpid()

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    text = warnings[0].getMessage()
    assert "stale" in text
    assert f"pid {proc.pid}" in text
    assert not _note(lock).exists()


def test_normal_exit_removes_the_holder_note(lock: Path) -> None:
    proc = _holder(lock, "return")
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert out.split() == ["held", "released"]
    assert not _note(lock).exists()


def test_a_clean_lock_takes_no_warning(lock: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="epochline.retrain.lock"):
        for _ in range(2):  # released, then taken again without a stale note
            with exclusive(lock):
                note = json.loads(_note(lock).read_text())
                assert set(note) == {"pid", "host", "started"}
            assert not _note(lock).exists()
    assert caplog.records == []


def test_an_error_in_the_block_still_releases(lock: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), exclusive(lock):
        raise RuntimeError("boom")
    assert not _note(lock).exists()
    proc = _holder(lock, "return")
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "held" in out
