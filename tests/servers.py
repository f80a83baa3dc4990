"""Servers the tests start for real on 127.0.0.1, and stop."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from epochline.tools import stop


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(url: str, server: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            out = server.stdout.read() if server.stdout else ""
            raise AssertionError(f"server exited {server.returncode}: {out}")
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
    server = subprocess.Popen(
        [*args, str(port)], cwd=cwd, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base + ready_path, server)
        yield base
    finally:
        stop(server)
