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

base.py holds the names, timeouts and helpers all parts share; processes.py starts, records
and stops the servers; postgres.py, s3.py and mlflow_server.py set up one server each;
stack.py runs them as one (start, load, running, stop); cli.py is the command.
"""

from devtools.teamstack.base import BUCKET, Credentials, StackError
from devtools.teamstack.cli import main
from devtools.teamstack.mlflow_server import api
from devtools.teamstack.processes import Proc
from devtools.teamstack.stack import Stack, load, running, start, stop

__all__ = [
    "BUCKET",
    "Credentials",
    "Proc",
    "Stack",
    "StackError",
    "api",
    "load",
    "main",
    "running",
    "start",
    "stop",
]
