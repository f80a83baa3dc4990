"""What every part of the team stack shares: where it listens, its names and timeouts, the
error it raises, credentials, private files and waiting for a server."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from epochline.core.errors import Failed

HOST = "127.0.0.1"
BUCKET = "epochline"
ARTIFACTS_DESTINATION = f"s3://{BUCKET}/mlartifacts"
DVC_REMOTE_URL = f"s3://{BUCKET}/dvc"
REGION = "us-east-1"
PG_OS_USER = "epochline-pg"  # runs the cluster when we are root
PG_SUPERUSER = "postgres"
DB_ROLE = "mlflow"
TRACKING_DB = "mlflow"
AUTH_DB = "mlflow_auth"  # the password hashes apart from the tracking data
# Every authenticated user may read everything; only a resource's creator (who gets MANAGE)
# or an admin may change it. So `viewer` can look at trainer's runs but not log into them.
DEFAULT_PERMISSION = "READ"
ADMIN, TRAINER, VIEWER = "admin", "trainer", "viewer"
PG_TIMEOUT_S = 60
S3_TIMEOUT_S = 60
MLFLOW_TIMEOUT_S = 240  # first start migrates two empty databases; slow on 2 cores
STOP_TIMEOUT_S = 20
STACK_FILE = "stack.json"
PIDS_FILE = "pids.json"  # written as each process starts, so a failed `up` can be undone
ENV_FILE = "env.sh"


class StackError(Failed):
    """The local team stack could not be started or stopped."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


def pg_uri(user: str, port: int, database: str, password: str | None = None) -> str:
    # The driver is named: SQLAlchemy 2.1's default for postgresql:// is psycopg 3, which is not
    # installed. Passwords are token_urlsafe: nothing in them needs quoting in a URI.
    secret = f":{password}" if password else ""
    return f"postgresql+psycopg2://{user}{secret}@{HOST}:{port}/{database}"


def env_without(*prefixes: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


def password() -> str:
    return secrets.token_urlsafe(24)  # MLflow wants 12+ characters


def access_key_id() -> str:
    # Shaped like a real AWS key id, so secret scanners and tests recognise it as one.
    return "AKIA" + "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))


def write_private(path: Path, text: str) -> None:
    """Write `path` readable by its owner only: it holds passwords."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def log_file(state_dir: Path, name: str) -> IO[bytes]:
    # 0600: the servers may log request details.
    fd = os.open(state_dir / "logs" / f"{name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    return os.fdopen(fd, "ab")


def log_tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


def wait_for(what: str, ready: Callable[[], bool], timeout_s: float, log_path: Path) -> float:
    """Poll `ready` until it is true; seconds taken. Fails naming the log to read."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if ready():
            return time.monotonic() - start
        time.sleep(0.25)
    raise StackError(
        f"{what} not ready after {timeout_s:.0f} s; see {log_path}: {log_tail(log_path)}"
    )
