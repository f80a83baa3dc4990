"""The whole stack: start Postgres, the S3 server and MLflow in order (undoing a failed start),
describe it in stack.json and env.sh, load that back, and stop it."""

from __future__ import annotations

import functools
import json
import logging
import secrets
import shlex
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from devtools.servers import free_port, release_port
from devtools.teamstack.base import (
    ADMIN,
    BUCKET,
    DB_ROLE,
    DVC_REMOTE_URL,
    ENV_FILE,
    HOST,
    PG_SUPERUSER,
    PIDS_FILE,
    STACK_FILE,
    TRACKING_DB,
    TRAINER,
    VIEWER,
    Credentials,
    StackError,
    access_key_id,
    password,
    pg_uri,
    write_private,
)
from devtools.teamstack.mlflow_server import (
    auth_config,
    create_users,
    mlflow_env,
    start_mlflow,
    wait_mlflow,
)
from devtools.teamstack.postgres import (
    PgHost,
    check_reachable,
    create_databases,
    find_pg_bin,
    init_cluster,
    pg_os_user,
    start_postgres,
    stop_postgres,
)
from devtools.teamstack.processes import Proc, alive, recorded, terminate
from devtools.teamstack.s3 import create_bucket, s3_client, start_s3

log = logging.getLogger(__name__)


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
        return pg_uri(self.db.username, self.pg_port, TRACKING_DB, self.db.password)

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
    write_private(state_dir / PIDS_FILE, "[]")  # also what tells `down` the dir is ours


def _secrets() -> dict[str, Any]:
    return {
        "aws_access_key_id": access_key_id(),
        "aws_secret_access_key": secrets.token_urlsafe(30),
        "admin": Credentials(ADMIN, password()),
        "trainer": Credentials(TRAINER, password()),
        "viewer": Credentials(VIEWER, password()),
        "db": Credentials(DB_ROLE, password()),
        "pg_superuser": Credentials(PG_SUPERUSER, password()),
    }


def _up_postgres(state_dir: Path, parts: dict[str, Any]) -> None:
    pg = PgHost(bin=find_pg_bin(), os_user=pg_os_user())
    if pg.os_user is not None:
        check_reachable(state_dir, pg.os_user)
    parts.update(pg_bin=pg.bin, pg_os_user=pg.os_user, pg_port=free_port())
    _record_meta(state_dir, parts)
    started = time.monotonic()
    data = init_cluster(pg, state_dir, parts["pg_superuser"], parts["pg_port"])
    start_postgres(pg, state_dir, data)
    create_databases(parts["pg_superuser"], parts["pg_port"], parts["db"])
    log.info("postgres ready on %s:%d (%.1f s)", HOST, parts["pg_port"], time.monotonic() - started)


def _up_s3(state_dir: Path, parts: dict[str, Any]) -> None:
    port = free_port()
    parts.update(s3_port=port, s3_endpoint=f"http://{HOST}:{port}")
    proc = start_s3(state_dir, port)
    client = s3_client(
        parts["s3_endpoint"], parts["aws_access_key_id"], parts["aws_secret_access_key"]
    )
    waited = create_bucket(proc, client, state_dir / "logs" / "s3.log")
    log.info("S3 (moto) ready on %s, bucket %s (%.1f s)", parts["s3_endpoint"], BUCKET, waited)


def _up_mlflow(state_dir: Path, parts: dict[str, Any]) -> None:
    port = free_port()
    parts.update(mlflow_port=port, tracking_uri=f"http://{HOST}:{port}")
    env = mlflow_env(parts, auth_config(state_dir, parts["pg_port"]))
    proc = start_mlflow(state_dir, port, env)
    waited = wait_mlflow(proc, parts["tracking_uri"], state_dir / "logs" / "mlflow.log")
    create_users(parts["tracking_uri"], parts["admin"], [parts["trainer"], parts["viewer"]])
    log.info("mlflow ready on %s, users %s and %s (%.1f s)", parts["tracking_uri"],
             TRAINER, VIEWER, waited)  # fmt: skip


def _record_meta(state_dir: Path, parts: dict[str, Any]) -> None:
    """What `stop` needs to find the cluster even if `up` dies before writing stack.json."""
    meta = {"pg_bin": str(parts["pg_bin"]), "pg_os_user": parts["pg_os_user"]}
    write_private(state_dir / "pg.json", json.dumps(meta))


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
    finally:
        # free_port's claims kept another test run from the ports until the servers bound them.
        for key in ("pg_port", "s3_port", "mlflow_port"):
            if key in parts:
                release_port(parts[key])
    stack = Stack(**parts, processes=tuple(recorded(state_dir)))
    _save(stack)
    return stack


def _save(stack: Stack) -> None:
    write_private(stack.state_dir / STACK_FILE, json.dumps(_to_json(stack), indent=2) + "\n")
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in stack.user_env().items())
    write_private(stack.state_dir / ENV_FILE, exports)


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
    return all(alive(proc) for proc in stack.processes)


def _pg_host(state_dir: Path) -> PgHost | None:
    try:
        meta = json.loads((state_dir / "pg.json").read_text())
    except FileNotFoundError:
        return None
    return PgHost(bin=Path(meta["pg_bin"]), os_user=meta["pg_os_user"])


def stop(state_dir: Path) -> None:
    """Stop every process the stack started (MLflow, S3, then Postgres). Deletes nothing.

    Idempotent: processes already gone, or never started, are skipped.
    """
    state_dir = state_dir.resolve()
    procs = {proc.name: proc for proc in recorded(state_dir)}
    for name in ("mlflow", "s3"):
        if name in procs:
            _timed(name, functools.partial(terminate, procs[name]))
    pg = _pg_host(state_dir)
    if pg is not None:
        _timed("postgres", lambda: stop_postgres(pg, state_dir))
    if "postgres" in procs:
        terminate(procs["postgres"])  # only does anything if pg_ctl could not stop it


def _timed(name: str, stop_it: Callable[[], bool]) -> None:
    started = time.monotonic()
    if stop_it():
        log.info("stopped %s (%.1f s)", name, time.monotonic() - started)
