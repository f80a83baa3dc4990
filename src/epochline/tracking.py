"""Everything MLflow: where the store is, the run's lifecycle, tags, the logged model."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import mlflow
import pandas as pd
from filelock import FileLock
from mlflow.data.dataset import Dataset
from mlflow.data.pandas_dataset import from_pandas
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from epochline.errors import TrackingUnavailable
from epochline.params import TrackingParams

log = logging.getLogger(__name__)

STORE_FILE = "mlflow.db"
ARTIFACT_DIR = (
    "mlartifacts"  # not ./mlruns: a folder of that name flips `mlflow ui` to a file store
)
MODEL_NAME = "model"

TAG_GIT_COMMIT = "epochline.git_commit"
TAG_GIT_DIRTY = "epochline.git_dirty"
TAG_DATA_DIGEST = "epochline.data_digest"
TAG_MODEL_DIGEST = "epochline.model_digest"
TAG_EXP_NAME = "epochline.dvc_exp_name"
TAG_BASELINE = "epochline.dvc_baseline_rev"


def project_root() -> Path:
    """The real repo root, also when DVC runs an experiment in a temporary copy."""
    return Path(os.environ.get("DVC_ROOT") or Path.cwd()).resolve()


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root() / STORE_FILE}"


def connect(params: TrackingParams) -> str:
    """Point MLflow at the store and return the experiment id, creating it if needed."""
    # Fail in seconds, not the ~4 minutes of MLflow's default retries, if a server is down.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    if not sys.stderr.isatty():  # under DVC or a scheduler: log lines, not progress bars
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    local = uri.startswith("sqlite:")
    root = project_root()
    # Parallel first writers on a fresh SQLite store race on schema creation; serialise
    # the first contact (which creates the schema) and the experiment's creation.
    lock = FileLock(root / f".{STORE_FILE}.lock") if local else None
    try:
        if lock:
            lock.acquire(timeout=120)
        experiment = mlflow.get_experiment_by_name(params.experiment_name)
        if experiment is not None:
            return experiment.experiment_id
        location = (root / ARTIFACT_DIR).as_uri() if local else None
        return mlflow.create_experiment(params.experiment_name, artifact_location=location)
    except MlflowException as exc:
        first = str(exc).splitlines()[0][:200]
        raise TrackingUnavailable(f"MLflow tracking store {uri} is not usable: {first}") from None
    finally:
        if lock:
            lock.release()


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


_PROVENANCE = ("src", "dvc.yaml", "params.yaml", "pyproject.toml", "requirements.lock")


def run_context(data_digest: str) -> tuple[str, dict[str, str]]:
    """A run name a person can tell apart from others, and the provenance tags."""
    commit = _git("rev-parse", "HEAD") or "unknown"
    # Code and config only: DVC rewrites (and autostages) dvc.lock during every repro.
    status = _git("status", "--porcelain", "--untracked-files=no", "--", *_PROVENANCE)
    exp_name = os.environ.get("DVC_EXP_NAME", "")
    tags = {
        TAG_GIT_COMMIT: commit,
        TAG_GIT_DIRTY: "unknown" if status is None else str(bool(status)).lower(),
        TAG_DATA_DIGEST: data_digest,
        TAG_EXP_NAME: exp_name,
        TAG_BASELINE: os.environ.get("DVC_EXP_BASELINE_REV", commit),
        "mlflow.source.git.commit": commit,
    }
    name = exp_name or f"train-{datetime.now():%Y%m%d-%H%M%S}-{commit[:7]}"
    return name, tags


@contextmanager
def _quiet_schema_hints() -> Iterator[None]:
    with warnings.catch_warnings():
        # The 0/1 label is an integer column by design; MLflow hints about missing values.
        warnings.filterwarnings("ignore", "Hint: Inferred schema contains integer")
        # MLflow registers two equivalent local-file source types and warns that it picked one.
        warnings.filterwarnings("ignore", "The specified dataset source can be interpreted")
        yield


def log_datasets(tables: dict[str, tuple[pd.DataFrame, Path]], label: str) -> None:
    with _quiet_schema_hints():
        datasets: list[Dataset | None] = [
            from_pandas(df, source=str(path.resolve()), targets=label, name=name)
            for name, (df, path) in tables.items()
        ]
        contexts: list[str | None] = ["training" if n == "train" else "testing" for n in tables]
        mlflow.log_inputs(datasets=datasets, contexts=contexts, tags_list=[None] * len(datasets))


def requirements() -> list[str]:
    """Given explicitly: inferring them at log time costs seconds per run."""
    from importlib.metadata import version

    # Without the local label (2.13.0+cpu): an index serves torch==2.13.0, not +cpu.
    pins = [
        f"{pkg}=={version(pkg).split('+')[0]}" for pkg in ("mlflow", "torch", "pandas", "numpy")
    ]
    return pins


def log_model(checkpoint: Path, example: pd.DataFrame, output: pd.DataFrame) -> str:
    """Log the serving model (code + checkpoint) into the active run; return its URI."""
    package = Path(__file__).parent
    with _quiet_schema_hints():
        info = mlflow.pyfunc.log_model(
            name=MODEL_NAME,
            python_model=str(package / "serving.py"),
            artifacts={"checkpoint": str(checkpoint)},
            signature=mlflow.models.infer_signature(example, output),
            input_example=example,
            pip_requirements=requirements(),
        )
    return str(info.model_uri)


def client() -> MlflowClient:
    return MlflowClient(tracking_uri())
