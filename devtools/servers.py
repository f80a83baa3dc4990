"""Servers the tests start for real on 127.0.0.1, and stop."""

from __future__ import annotations

import fcntl
import os
import random
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from epochline.core.processes import stop_child

# A port handed out here is claimed by a lock file until this process gives it back (or
# ends): two xdist workers, or two people's test runs on one machine, never get the same
# port between one's check and its server's bind.
_CLAIMS = Path(tempfile.gettempdir()) / "epochline-test-ports"
_held: dict[int, int] = {}  # port -> the open lock file that claims it
STOP_TIMEOUT_S = 30  # from SIGTERM to SIGKILL, to the server's whole process group


def _candidates() -> list[int]:
    """Ports below the kernel's ephemeral range: bind(0) and outgoing connections, which
    take theirs from that range, cannot take one of ours between the claim and the bind."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except OSError:
        low, high = 32768, 60999
    ports = list(range(10000, low)) if low > 11000 else list(range(high + 1, 65536))
    random.SystemRandom().shuffle(ports)  # not `random`, which pytest-randomly seeds alike
    return ports


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A free port on 127.0.0.1, claimed for this process: no other test run gets it."""
    _CLAIMS.mkdir(mode=0o777, exist_ok=True)
    for port in _candidates():
        claim = os.open(_CLAIMS / f"{port}.lock", os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(claim, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(claim)
            continue
        if port not in _held and _bindable(port):
            _held[port] = claim
            return port
        os.close(claim)
    raise AssertionError("no free port to claim on 127.0.0.1")


def release_port(port: int) -> None:
    """Give a port from free_port back, once its server has stopped."""
    claim = _held.pop(port, None)
    if claim is not None:
        os.close(claim)  # closing the file drops its lock


def _output(server: subprocess.Popen, log: Path | None) -> str:
    if log is not None:
        return log.read_text(errors="replace")
    return server.stdout.read() if server.stdout else ""


def wait_until_up(
    url: str, server: subprocess.Popen, seconds: float = 120, log: Path | None = None
) -> None:
    """Wait for `url` to answer; `log` is where the server writes, shown if it dies."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"server exited {server.returncode}: {_output(server, log)}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"server not up at {url} after {seconds}s")


@contextmanager
def serving(args: list[str], cwd: Path, env: dict[str, str], ready_path: str) -> Iterator[str]:
    """Start a server whose args end with its port, wait for `ready_path`; yield its base URL."""
    port = free_port()
    # A file, not a pipe: nothing reads a pipe while the test runs, and a chatty server
    # blocks once the pipe's 64 KiB are full.
    fd, name = tempfile.mkstemp(prefix=f"epochline-server-{port}-", suffix=".log")
    log = Path(name)
    try:
        with os.fdopen(fd, "w") as out:
            server = subprocess.Popen(
                [*args, str(port)], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopping it stops its workers
            )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(base + ready_path, server, log=log)
            yield base
        finally:
            stop_child(server, STOP_TIMEOUT_S, group=True)
    finally:
        release_port(port)
        log.unlink(missing_ok=True)
