"""A local team stack for tests and for trying team mode: PostgreSQL, an S3 server (moto) and
an MLflow server with basic auth whose artifacts go to the S3 bucket.

    python -m devtools.teamstack up [--dir .team]     start it; print the env to export
    python -m devtools.teamstack env [--dir .team]    print the exports of a running stack
    python -m devtools.teamstack down [--dir .team]   stop it and delete the state dir

Everything listens on 127.0.0.1 only, on free ports picked at start, and every password and
key is random per stack. The processes outlive `up` (each in its own session); their logs,
the Postgres cluster and `stack.json` (pids, ports, credentials) live in the state dir.
initdb refuses to run as root, so under root the cluster runs as the system user
`epochline-pg`, created on first use.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import json
import logging
import os
import pwd
import secrets
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from epochline.core.errors import Failed

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class Proc:
    """A process the stack started. `start_ticks` tells it from a later one with the same pid."""

    name: str
    pid: int
    pgid: int
    start_ticks: int


@dataclass(frozen=True)
class Stack:
    state_dir: Path
    tracking_uri: str
    mlflow_port: int
    s3_endpoint: str
    s3_port: int
    pg_port: int
    aws_access_key_id: str
    aws_secret_access_key: str
    admin: Credentials
    trainer: Credentials
    viewer: Credentials
    db: Credentials  # the Postgres role that owns the tracking and auth databases
    pg_superuser: Credentials
    pg_os_user: str | None  # None: the cluster runs as whoever ran `up`
    pg_bin: Path
    processes: tuple[Proc, ...]

    @property
    def database_uri(self) -> str:
        """The tracking database, password included (for tests that look at the rows)."""
        return _pg_uri(self.db.username, self.pg_port, TRACKING_DB, self.db.password)

    def user_env(self) -> dict[str, str]:
        """What a user exports to train against the stack as `trainer` and push to its remote."""
        return {
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            "MLFLOW_TRACKING_USERNAME": self.trainer.username,
            "MLFLOW_TRACKING_PASSWORD": self.trainer.password,
            "AWS_ACCESS_KEY_ID": self.aws_access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.aws_secret_access_key,
            # Read by deploy/scheduled-retrain.sh; by hand: dvc remote modify --local …
            "DVC_REMOTE_ENDPOINT": self.s3_endpoint,
        }

    def dvc_remote_commands(self) -> list[str]:
        return [
            f"dvc remote add --local -d team {DVC_REMOTE_URL}",
            f"dvc remote modify --local team endpointurl {self.s3_endpoint}",
        ]


# ---------------------------------------------------------------- small helpers


def _pg_uri(user: str, port: int, database: str, password: str | None = None) -> str:
    # The driver is named: SQLAlchemy 2.1's default for postgresql:// is psycopg 3, which is not
    # installed. Passwords are token_urlsafe: nothing in them needs quoting in a URI.
    secret = f":{password}" if password else ""
    return f"postgresql+psycopg2://{user}{secret}@{HOST}:{port}/{database}"


def _env_without(*prefixes: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


def _password() -> str:
    return secrets.token_urlsafe(24)  # MLflow wants 12+ characters


def _access_key_id() -> str:
    # Shaped like a real AWS key id, so secret scanners and tests recognise it as one.
    return "AKIA" + "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _write_private(path: Path, text: str) -> None:
    """Write `path` readable by its owner only: it holds passwords."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def _log_file(state_dir: Path, name: str) -> IO[bytes]:
    # 0600: the servers may log request details.
    fd = os.open(state_dir / "logs" / f"{name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    return os.fdopen(fd, "ab")


def _log_tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


def _wait_for(what: str, ready: Callable[[], bool], timeout_s: float, log_path: Path) -> float:
    """Poll `ready` until it is true; seconds taken. Fails naming the log to read."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if ready():
            return time.monotonic() - start
        time.sleep(0.25)
    raise StackError(
        f"{what} not ready after {timeout_s:.0f} s; see {log_path}: {_log_tail(log_path)}"
    )


# ---------------------------------------------------------------- processes


def _stat(pid: int) -> tuple[str, int] | None:
    """The process's state letter and start time in clock ticks; None: no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()  # the name in parentheses may hold spaces
    return fields[0], int(fields[19])


def _proc(name: str, pid: int) -> Proc:
    found = _stat(pid)
    if found is None or found[0] == "Z":
        raise StackError(f"{name} (pid {pid}) exited right after starting")
    return Proc(name=name, pid=pid, pgid=os.getpgid(pid), start_ticks=found[1])


def _alive(proc: Proc) -> bool:
    """Whether `proc` still runs; a pid reused by another process since does not count."""
    found = _stat(proc.pid)
    if found is None or found[1] != proc.start_ticks:
        return False
    if found[0] == "Z":
        _reap(proc.pid)
        return False
    return True


def _reap(pid: int) -> None:
    """Collect our exited child (a test that started the stack in-process), or nothing."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _signal_group(proc: Proc, sig: signal.Signals) -> None:
    # The whole group: `mlflow server` runs uvicorn (and its job runner) as children.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pgid, sig)


def _terminate(proc: Proc, timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """SIGTERM the process's group, wait, then SIGKILL. Never signals a pid reused since.

    True if it was running.
    """
    if not _alive(proc):
        return False
    _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(proc):
            return True
        time.sleep(0.2)
    log.warning(
        "%s (pid %d) ignored SIGTERM for %.0f s: killing it", proc.name, proc.pid, timeout_s
    )
    _signal_group(proc, signal.SIGKILL)
    return True


def _spawn(state_dir: Path, name: str, cmd: list[str], env: dict[str, str]) -> Proc:
    """Start `cmd` in its own session (it outlives `up`), output to logs/NAME.log."""
    with _log_file(state_dir, name) as out:
        child = subprocess.Popen(
            cmd, env=env, cwd=state_dir, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    proc = _proc(name, child.pid)
    _record(state_dir, proc)
    return proc


def _record(state_dir: Path, proc: Proc) -> None:
    procs = [*_recorded(state_dir), proc]
    _write_private(state_dir / PIDS_FILE, json.dumps([asdict(p) for p in procs], indent=1))


def _recorded(state_dir: Path) -> list[Proc]:
    try:
        rows = json.loads((state_dir / PIDS_FILE).read_text())
    except FileNotFoundError:
        return []
    return [Proc(**row) for row in rows]


# ---------------------------------------------------------------- PostgreSQL


@dataclass(frozen=True)
class _PgHost:
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
            timeout=timeout_s, start_new_session=True, env={**_env_without("PG"), "LC_ALL": "C"},
            **ids,
        )  # fmt: skip


def _find_pg_bin() -> Path:
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


def _pg_os_user() -> str | None:
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


def _check_reachable(state_dir: Path, os_user: str) -> None:
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


def _init_cluster(pg: _PgHost, state_dir: Path, superuser: Credentials, port: int) -> Path:
    data = state_dir / "pgdata"
    data.mkdir(mode=0o700)
    pwfile = state_dir / "pgdata.pw"
    _write_private(pwfile, superuser.password + "\n")
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


def _start_postgres(pg: _PgHost, state_dir: Path, data: Path) -> Proc:
    logs = state_dir / "logs" / "postgres.log"
    args = ["pg_ctl", "-D", str(data), "-l", str(logs), "-w", "-t", str(PG_TIMEOUT_S), "start"]
    done = pg.run(args, state_dir, PG_TIMEOUT_S + 10)
    if done.returncode != 0:
        raise StackError(f"PostgreSQL did not start: {_log_tail(logs)}")
    pid = int((data / "postmaster.pid").read_text().split()[0])
    proc = _proc("postgres", pid)
    _record(state_dir, proc)
    return proc


def _create_databases(superuser: Credentials, port: int, db: Credentials) -> None:
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


def _stop_postgres(pg: _PgHost, state_dir: Path) -> bool:
    """`pg_ctl stop` (fast: ends client sessions). True if the cluster was running."""
    data = state_dir / "pgdata"
    if not (data / "postmaster.pid").exists():
        return False
    args = ["pg_ctl", "-D", str(data), "-m", "fast", "-w", "-t", str(STOP_TIMEOUT_S), "stop"]
    done = pg.run(args, state_dir, STOP_TIMEOUT_S + 10)
    if done.returncode != 0:
        log.warning("pg_ctl stop failed (%s): signalling it", done.stderr.strip())
    return True


# ---------------------------------------------------------------- S3 (moto)


def _s3_client(endpoint: str, key_id: str, secret: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10),
    )  # fmt: skip


def _start_s3(state_dir: Path, port: int) -> Proc:
    cmd = [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)]
    return _spawn(state_dir, "s3", cmd, dict(os.environ))


def _create_bucket(proc: Proc, client: Any, log_path: Path) -> float:
    """Create the bucket once the server answers; seconds waited."""

    from botocore.exceptions import BotoCoreError

    def created() -> bool:
        if not _alive(proc):
            raise StackError(f"the S3 server exited; see {log_path}: {_log_tail(log_path)}")
        try:
            client.create_bucket(Bucket=BUCKET)
        except BotoCoreError as exc:  # connection refused while it starts; an S3 error raises
            log.debug("S3 not ready: %s", exc)
            return False
        return True

    return _wait_for("the S3 server", created, S3_TIMEOUT_S, log_path)


# ---------------------------------------------------------------- MLflow


def _auth_config(state_dir: Path, pg_port: int) -> Path:
    """The basic-auth ini (keys as read by mlflow.server.auth.config.read_auth_config).

    No password in it: libpq takes it from PGPASSWORD in the server's environment.
    """
    path = state_dir / "basic_auth.ini"
    _write_private(
        path,
        "[mlflow]\n"
        f"default_permission = {DEFAULT_PERMISSION}\n"
        f"database_uri = {_pg_uri(DB_ROLE, pg_port, AUTH_DB)}\n"
        f"admin_username = {ADMIN}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "grant_default_workspace_access = false\n",
    )
    return path


def _mlflow_env(parts: dict[str, Any], auth_ini: Path) -> dict[str, str]:
    """The server's environment: secrets go here, never on its command line (ps shows that)."""
    return {
        **_env_without("AWS_", "MLFLOW_TRACKING_", "PG"),  # no stray settings of the user's
        "MLFLOW_BACKEND_STORE_URI": _pg_uri(DB_ROLE, parts["pg_port"], TRACKING_DB),
        "PGPASSWORD": parts["db"].password,  # for both the tracking and the auth database
        "MLFLOW_AUTH_CONFIG_PATH": str(auth_ini),
        "MLFLOW_AUTH_ADMIN_PASSWORD": parts["admin"].password,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_urlsafe(32),
        "MLFLOW_S3_ENDPOINT_URL": parts["s3_endpoint"],
        "AWS_ACCESS_KEY_ID": parts["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": parts["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",  # no credential hunt on a machine without IMDS
        # An unreachable object store: the server answers 500 after one retry, not after
        # botocore's default five attempts, and the client's own retries stay short.
        "AWS_RETRY_MODE": "standard",
        "AWS_MAX_ATTEMPTS": "2",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        # The job runner (GenAI scorers, prompt optimisation; nothing epochline uses) would add
        # seven huey consumer processes, ~1.4 GB and seconds of start and stop time.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }


def _start_mlflow(state_dir: Path, port: int, env: dict[str, str]) -> Proc:
    cmd = [
        sys.executable, "-m", "mlflow", "server", "--host", HOST, "--port", str(port),
        "--workers", "1", "--app-name", "basic-auth",
        "--serve-artifacts", "--artifacts-destination", ARTIFACTS_DESTINATION,
    ]  # fmt: skip
    return _spawn(state_dir, "mlflow", cmd, env)


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status) == 200
    except (OSError, urllib.error.URLError):
        return False


def _wait_mlflow(proc: Proc, tracking_uri: str, log_path: Path) -> float:
    def healthy() -> bool:
        if not _alive(proc):
            raise StackError(f"mlflow server exited; see {log_path}: {_log_tail(log_path)}")
        return _http_ok(f"{tracking_uri}/health")

    return _wait_for("mlflow server", healthy, MLFLOW_TIMEOUT_S, log_path)


def api(
    tracking_uri: str, creds: Credentials, path: str, body: dict[str, Any] | None = None
) -> Any:
    """Call the MLflow REST API as `creds`: GET without a body, POST with one."""
    token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
    request = urllib.request.Request(
        f"{tracking_uri}{path}", method="GET" if body is None else "POST",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.loads(resp.read() or b"{}")


def _create_users(tracking_uri: str, admin: Credentials, users: list[Credentials]) -> None:
    for user in users:
        try:
            api(tracking_uri, admin, "/api/2.0/mlflow/users/create", asdict(user))
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:200]
            raise StackError(f"creating MLflow user {user.username!r} failed: {detail}") from exc


# ---------------------------------------------------------------- the stack


def _new_state_dir(state_dir: Path) -> None:
    if state_dir.exists() and any(state_dir.iterdir()):
        raise StackError(
            f"{state_dir} is not empty (a stack already there?): stop and delete it with "
            f"`python -m devtools.teamstack down --dir {state_dir}`, or pick another --dir"
        )
    (state_dir / "logs").mkdir(parents=True, exist_ok=True)
    # Others may enter (the Postgres user must reach pgdata) but not list; files are 0600.
    state_dir.chmod(0o711)
    (state_dir / "logs").chmod(0o711)
    _write_private(state_dir / PIDS_FILE, "[]")  # also what tells `down` the dir is ours


def _secrets() -> dict[str, Any]:
    return {
        "aws_access_key_id": _access_key_id(),
        "aws_secret_access_key": secrets.token_urlsafe(30),
        "admin": Credentials(ADMIN, _password()),
        "trainer": Credentials(TRAINER, _password()),
        "viewer": Credentials(VIEWER, _password()),
        "db": Credentials(DB_ROLE, _password()),
        "pg_superuser": Credentials(PG_SUPERUSER, _password()),
    }


def _up_postgres(state_dir: Path, parts: dict[str, Any]) -> None:
    pg = _PgHost(bin=_find_pg_bin(), os_user=_pg_os_user())
    if pg.os_user is not None:
        _check_reachable(state_dir, pg.os_user)
    parts.update(pg_bin=pg.bin, pg_os_user=pg.os_user, pg_port=_free_port())
    _record_meta(state_dir, parts)
    started = time.monotonic()
    data = _init_cluster(pg, state_dir, parts["pg_superuser"], parts["pg_port"])
    _start_postgres(pg, state_dir, data)
    _create_databases(parts["pg_superuser"], parts["pg_port"], parts["db"])
    log.info("postgres ready on %s:%d (%.1f s)", HOST, parts["pg_port"], time.monotonic() - started)


def _up_s3(state_dir: Path, parts: dict[str, Any]) -> None:
    port = _free_port()
    parts.update(s3_port=port, s3_endpoint=f"http://{HOST}:{port}")
    proc = _start_s3(state_dir, port)
    client = _s3_client(
        parts["s3_endpoint"], parts["aws_access_key_id"], parts["aws_secret_access_key"]
    )
    waited = _create_bucket(proc, client, state_dir / "logs" / "s3.log")
    log.info("S3 (moto) ready on %s, bucket %s (%.1f s)", parts["s3_endpoint"], BUCKET, waited)


def _up_mlflow(state_dir: Path, parts: dict[str, Any]) -> None:
    port = _free_port()
    parts.update(mlflow_port=port, tracking_uri=f"http://{HOST}:{port}")
    env = _mlflow_env(parts, _auth_config(state_dir, parts["pg_port"]))
    proc = _start_mlflow(state_dir, port, env)
    waited = _wait_mlflow(proc, parts["tracking_uri"], state_dir / "logs" / "mlflow.log")
    _create_users(parts["tracking_uri"], parts["admin"], [parts["trainer"], parts["viewer"]])
    log.info("mlflow ready on %s, users %s and %s (%.1f s)", parts["tracking_uri"],
             TRAINER, VIEWER, waited)  # fmt: skip


def _record_meta(state_dir: Path, parts: dict[str, Any]) -> None:
    """What `stop` needs to find the cluster even if `up` dies before writing stack.json."""
    meta = {"pg_bin": str(parts["pg_bin"]), "pg_os_user": parts["pg_os_user"]}
    _write_private(state_dir / "pg.json", json.dumps(meta))


def start(state_dir: Path) -> Stack:
    """Start Postgres, the S3 server and MLflow; create the bucket and users; write stack.json.

    On any failure, stops whatever it had started and re-raises.
    """
    state_dir = state_dir.resolve()
    _new_state_dir(state_dir)
    parts: dict[str, Any] = {"state_dir": state_dir, **_secrets()}
    try:
        _up_postgres(state_dir, parts)
        _up_s3(state_dir, parts)
        _up_mlflow(state_dir, parts)
    except BaseException:
        stop(state_dir)
        raise
    stack = Stack(**parts, processes=tuple(_recorded(state_dir)))
    _save(stack)
    return stack


def _save(stack: Stack) -> None:
    _write_private(stack.state_dir / STACK_FILE, json.dumps(_to_json(stack), indent=2) + "\n")
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in stack.user_env().items())
    _write_private(stack.state_dir / ENV_FILE, exports)


def _to_json(stack: Stack) -> dict[str, Any]:
    row = asdict(stack)
    row.update(state_dir=str(stack.state_dir), pg_bin=str(stack.pg_bin))
    row["database_uri"] = stack.database_uri  # for tests that look at the rows
    return row


def load(state_dir: Path) -> Stack:
    """The stack described in STATE_DIR/stack.json (running or not: see `running`)."""
    path = state_dir.resolve() / STACK_FILE
    try:
        row = json.loads(path.read_text())
    except FileNotFoundError:
        raise StackError(
            f"no team stack in {state_dir} ({path} is missing): start one with "
            f"`python -m devtools.teamstack up --dir {state_dir}`"
        ) from None
    row.pop("database_uri", None)
    for key in ("admin", "trainer", "viewer", "db", "pg_superuser"):
        row[key] = Credentials(**row[key])
    row.update(
        state_dir=Path(row["state_dir"]),
        pg_bin=Path(row["pg_bin"]),
        processes=tuple(Proc(**p) for p in row["processes"]),
    )
    return Stack(**row)


def running(stack: Stack) -> bool:
    """Whether every process of the stack is still up."""
    return all(_alive(proc) for proc in stack.processes)


def _pg_host(state_dir: Path) -> _PgHost | None:
    try:
        meta = json.loads((state_dir / "pg.json").read_text())
    except FileNotFoundError:
        return None
    return _PgHost(bin=Path(meta["pg_bin"]), os_user=meta["pg_os_user"])


def stop(state_dir: Path) -> None:
    """Stop every process the stack started (MLflow, S3, then Postgres). Deletes nothing.

    Idempotent: processes already gone, or never started, are skipped.
    """
    state_dir = state_dir.resolve()
    procs = {proc.name: proc for proc in _recorded(state_dir)}
    for name in ("mlflow", "s3"):
        if name in procs:
            _timed(name, functools.partial(_terminate, procs[name]))
    pg = _pg_host(state_dir)
    if pg is not None:
        _timed("postgres", lambda: _stop_postgres(pg, state_dir))
    if "postgres" in procs:
        _terminate(procs["postgres"])  # only does anything if pg_ctl could not stop it


def _timed(name: str, stop_it: Callable[[], bool]) -> None:
    started = time.monotonic()
    if stop_it():
        log.info("stopped %s (%.1f s)", name, time.monotonic() - started)


# ---------------------------------------------------------------- command line


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


if __name__ == "__main__":
    from epochline.core.runner import run_main

    run_main(main)
