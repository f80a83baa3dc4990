"""The stack's MLflow server: basic auth, its data in PostgreSQL, its artifacts in the bucket."""

from __future__ import annotations

import base64
import json
import secrets
import sys
import urllib.error
import urllib.request
from dataclasses import asdict
from pathlib import Path
from typing import Any

from devtools.teamstack.base import (
    ADMIN,
    ARTIFACTS_DESTINATION,
    AUTH_DB,
    DB_ROLE,
    DEFAULT_PERMISSION,
    HOST,
    MLFLOW_TIMEOUT_S,
    REGION,
    TRACKING_DB,
    Credentials,
    StackError,
    env_without,
    log_tail,
    pg_uri,
    wait_for,
    write_private,
)
from devtools.teamstack.processes import Proc, alive, spawn


def auth_config(state_dir: Path, pg_port: int) -> Path:
    """The basic-auth ini (keys as read by mlflow.server.auth.config.read_auth_config).

    No password in it: libpq takes it from PGPASSWORD in the server's environment.
    """
    path = state_dir / "basic_auth.ini"
    write_private(
        path,
        "[mlflow]\n"
        f"default_permission = {DEFAULT_PERMISSION}\n"
        f"database_uri = {pg_uri(DB_ROLE, pg_port, AUTH_DB)}\n"
        f"admin_username = {ADMIN}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "grant_default_workspace_access = false\n",
    )
    return path


def mlflow_env(parts: dict[str, Any], auth_ini: Path) -> dict[str, str]:
    """The server's environment: secrets go here, never on its command line (ps shows that)."""
    return {
        **env_without("AWS_", "MLFLOW_TRACKING_", "PG"),  # no stray settings of the user's
        "MLFLOW_BACKEND_STORE_URI": pg_uri(DB_ROLE, parts["pg_port"], TRACKING_DB),
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


def start_mlflow(state_dir: Path, port: int, env: dict[str, str]) -> Proc:
    cmd = [
        sys.executable, "-m", "mlflow", "server", "--host", HOST, "--port", str(port),
        "--workers", "1", "--app-name", "basic-auth",
        "--serve-artifacts", "--artifacts-destination", ARTIFACTS_DESTINATION,
    ]  # fmt: skip
    return spawn(state_dir, "mlflow", cmd, env)


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status) == 200
    except (OSError, urllib.error.URLError):
        return False


def wait_mlflow(proc: Proc, tracking_uri: str, log_path: Path) -> float:
    def healthy() -> bool:
        if not alive(proc):
            raise StackError(f"mlflow server exited; see {log_path}: {log_tail(log_path)}")
        return http_ok(f"{tracking_uri}/health")

    return wait_for("mlflow server", healthy, MLFLOW_TIMEOUT_S, log_path)


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


def create_users(tracking_uri: str, admin: Credentials, users: list[Credentials]) -> None:
    for user in users:
        try:
            api(tracking_uri, admin, "/api/2.0/mlflow/users/create", asdict(user))
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:200]
            raise StackError(f"creating MLflow user {user.username!r} failed: {detail}") from exc
