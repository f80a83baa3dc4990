"""devtools/servers.py, which the slow tiers start real servers with: a chatty server does not
stall, stopping it stops its workers, and a port it hands out is claimed from other runs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

from devtools.servers import _CLAIMS, free_port, release_port, serving

# A server that writes 1 MiB before it listens, and starts a worker that would outlive it.
SERVER = textwrap.dedent("""
    import http.server, subprocess, sys
    sys.stdout.write("x" * (1 << 20) + "\\n")
    sys.stdout.flush()
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    open(sys.argv[1], "w").write(str(worker.pid))
    handler = http.server.SimpleHTTPRequestHandler
    http.server.HTTPServer(("127.0.0.1", int(sys.argv[2])), handler).serve_forever()
""")  # fmt: skip


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; only its exit status waits to be collected


def test_a_chatty_server_comes_up_and_stopping_it_stops_its_worker(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("up")
    args = [sys.executable, "-c", SERVER, str(tmp_path / "worker.pid")]
    with serving(args, tmp_path, {"PATH": "/usr/bin:/bin"}, "/index.html") as base:
        with urllib.request.urlopen(base + "/index.html", timeout=10) as answer:
            assert answer.read() == b"up"
        worker = int((tmp_path / "worker.pid").read_text())
        assert _alive(worker)
    # The SIGKILL is sent when `serving` ends; on a busy machine the worker may take a moment
    # to be scheduled and die.
    deadline = time.monotonic() + 10
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(worker), f"the server's worker {worker} runs on"


def _claimable_elsewhere(port: int) -> bool:
    """Whether another process could claim `port` now."""
    probe = textwrap.dedent(f"""
        import fcntl, os, sys
        fd = os.open({str(_CLAIMS / f"{port}.lock")!r}, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            sys.exit(1)
    """)
    return subprocess.run([sys.executable, "-c", probe], timeout=30).returncode == 0


def test_a_port_is_claimed_from_other_processes_until_given_back() -> None:
    first, second = free_port(), free_port()
    try:
        assert first != second
        assert not _claimable_elsewhere(first)
    finally:
        release_port(first)
        release_port(second)
    assert _claimable_elsewhere(first)
