"""The stack's S3 server (moto): the bucket MLflow's artifacts and the DVC remote live in."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

from devtools.teamstack.base import (
    BUCKET,
    HOST,
    REGION,
    S3_TIMEOUT_S,
    StackError,
    log_tail,
    wait_for,
)
from devtools.teamstack.processes import Proc, alive, spawn

log = logging.getLogger(__name__)


def s3_client(endpoint: str, key_id: str, secret: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10),
    )  # fmt: skip


def start_s3(state_dir: Path, port: int) -> Proc:
    cmd = [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)]
    return spawn(state_dir, "s3", cmd, dict(os.environ))


def create_bucket(proc: Proc, client: Any, log_path: Path) -> float:
    """Create the bucket once the server answers; seconds waited."""

    from botocore.exceptions import BotoCoreError

    def created() -> bool:
        if not alive(proc):
            raise StackError(f"the S3 server exited; see {log_path}: {log_tail(log_path)}")
        try:
            client.create_bucket(Bucket=BUCKET)
        except BotoCoreError as exc:  # connection refused while it starts; an S3 error raises
            log.debug("S3 not ready: %s", exc)
            return False
        return True

    return wait_for("the S3 server", created, S3_TIMEOUT_S, log_path)
