"""The stack's PostgreSQL cluster: the tracking and auth databases, on 127.0.0.1 only.
initdb refuses to run as root, so under root the cluster runs as PG_OS_USER."""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.teamstack.base import (
    AUTH_DB,
    HOST,
    PG_OS_USER,
    PG_TIMEOUT_S,
    STOP_TIMEOUT_S,
    TRACKING_DB,
    Credentials,
    StackError,
    env_without,
    log_tail,
    write_private,
)
from devtools.teamstack.processes import Proc, as_proc, record

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PgHost:
    """How to run the Postgres tools: where they are and as whom."""

    bin: Path
    os_user: str | None

    def run(self, args: list[str], cwd: Path, timeout_s: float) -> subprocess.CompletedProcess[str]:
        ids: dict[str, Any] = {}
        if self.os_user is not None:
            entry = pwd.getpwnam(self.os_user)
            ids = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]], cwd=cwd, capture_output=True, text=True,
            timeout=timeout_s, start_new_session=True, env={**env_without("PG"), "LC_ALL": "C"},
            **ids,
        )  # fmt: skip


def find_pg_bin() -> Path:
    """Debian keeps the server tools off PATH, one folder per major version: take the newest."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1].parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise StackError(
        "PostgreSQL server tools not found (no /usr/lib/postgresql/*/bin/initdb, no initdb "
        "on PATH): install them, e.g. apt-get install postgresql"
    )


def pg_os_user() -> str | None:
    """The unprivileged user to run Postgres as when we are root (created if missing)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(PG_OS_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir",
             "/nonexistent", "--shell", "/usr/sbin/nologin", PG_OS_USER],
            check=True, capture_output=True,
        )  # fmt: skip
        log.info("created system user %s to run PostgreSQL (initdb refuses root)", PG_OS_USER)
    return PG_OS_USER


def check_reachable(state_dir: Path, os_user: str) -> None:
    """Fail early, with the folder to blame, if `os_user` cannot enter the state dir."""
    uid = pwd.getpwnam(os_user).pw_uid
    for folder in [*reversed(state_dir.parents), state_dir]:
        mode = folder.stat()
        can_enter = mode.st_mode & stat.S_IXOTH or (
            mode.st_uid == uid and mode.st_mode & stat.S_IXUSR
        )
        if not can_enter:
            raise StackError(
                f"PostgreSQL runs as {os_user}, which cannot enter {folder} (mode "
                f"{stat.S_IMODE(mode.st_mode):o}): use a --dir elsewhere, e.g. /tmp/epochline-team"
            )


def init_cluster(pg: PgHost, state_dir: Path, superuser: Credentials, port: int) -> Path:
    data = state_dir / "pgdata"
    data.mkdir(mode=0o700)
    pwfile = state_dir / "pgdata.pw"
    write_private(pwfile, superuser.password + "\n")
    logs = state_dir / "logs" / "postgres.log"
    logs.touch(mode=0o600)
    if pg.os_user is not None:
        for path in (data, pwfile, logs):
            shutil.chown(path, pg.os_user, pg.os_user)
    args = [
        "initdb", "-D", str(data), "-U", superuser.username, f"--pwfile={pwfile}",
        "--auth=scram-sha-256", "--encoding=UTF8", "--no-locale", "--no-instructions",
    ]  # fmt: skip
    done = pg.run(args, state_dir, PG_TIMEOUT_S)
    pwfile.unlink()
    if done.returncode != 0:
        raise StackError(f"initdb failed: {(done.stderr or done.stdout).strip()}")
    # No unix socket: nothing but TCP on 127.0.0.1, and no path-length or /run permission issues.
    settings = f"\nlisten_addresses = '{HOST}'\nport = {port}\nunix_socket_directories = ''\n"
    with open(data / "postgresql.conf", "a") as conf:
        conf.write(settings)
    return data


def start_postgres(pg: PgHost, state_dir: Path, data: Path) -> Proc:
    logs = state_dir / "logs" / "postgres.log"
    args = ["pg_ctl", "-D", str(data), "-l", str(logs), "-w", "-t", str(PG_TIMEOUT_S), "start"]
    done = pg.run(args, state_dir, PG_TIMEOUT_S + 10)
    if done.returncode != 0:
        raise StackError(f"PostgreSQL did not start: {log_tail(logs)}")
    pid = int((data / "postmaster.pid").read_text().split()[0])
    proc = as_proc("postgres", pid)
    record(state_dir, proc)
    return proc


def create_databases(superuser: Credentials, port: int, db: Credentials) -> None:
    import psycopg2  # here, not at import: only `up` needs it

    conn = psycopg2.connect(
        host=HOST, port=port, user=superuser.username, password=superuser.password,
        dbname="postgres", connect_timeout=10,
    )  # fmt: skip
    conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
    try:
        with conn.cursor() as cur:
            cur.execute(f'CREATE ROLE "{db.username}" LOGIN PASSWORD %s', (db.password,))
            for name in (TRACKING_DB, AUTH_DB):
                cur.execute(f'CREATE DATABASE "{name}" OWNER "{db.username}"')
    finally:
        conn.close()


def stop_postgres(pg: PgHost, state_dir: Path) -> bool:
    """`pg_ctl stop` (fast: ends client sessions). True if the cluster was running."""
    data = state_dir / "pgdata"
    if not (data / "postmaster.pid").exists():
        return False
    args = ["pg_ctl", "-D", str(data), "-m", "fast", "-w", "-t", str(STOP_TIMEOUT_S), "stop"]
    done = pg.run(args, state_dir, STOP_TIMEOUT_S + 10)
    if done.returncode != 0:
        log.warning("pg_ctl stop failed (%s): signalling it", done.stderr.strip())
    return True
