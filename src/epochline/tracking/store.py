"""Everything MLflow: where the store is, the run's lifecycle, tags, the logged model."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import unquote, urlsplit
from urllib.request import Request, urlopen

import mlflow
import pandas as pd
from filelock import FileLock
from mlflow.data.dataset import Dataset
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, infer_signature
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec
from mlflow.types import Schema as MlflowSchema
from mlflow.types.schema import AnyType

from epochline.core.errors import TrackingUnavailable, UserError, first_line
from epochline.core.files import read_json
from epochline.core.params import TrackingParams, parse_text
from epochline.core.paths import MODEL_INFO, RAW_MANIFEST
from epochline.data import tables
from epochline.tracking import provenance as provenance_
from epochline.tracking.tags import (
    TAG_BASELINE,
    TAG_CHANGES,
    TAG_DATA_CHANGES,
    TAG_DATA_DIGEST,
    TAG_DESCRIPTION,
    TAG_EXP_NAME,
    TAG_EXP_REF,
    TAG_GIT_COMMIT,
    TAG_GIT_DIRTY,
    TAG_MODEL_DIGEST,
    TAG_MODEL_URI,
    TAG_PARENT_RUN,
    TAG_TRAIN_KEY,
)

log = logging.getLogger(__name__)

STORE_FILE = "mlflow.db"
ARTIFACT_DIR = (
    "mlartifacts"  # not ./mlruns: a folder of that name flips `mlflow ui` to a file store
)
MODEL_NAME = "model"

# The 3.x UI opens an experiment on its GenAI overview unless told it holds model training.
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
# The params a run's name describes: those that change what train produces.
NAMED_SECTIONS = ("data", "split", "train", "evaluate")


def project_root() -> Path:
    """The real repo root, also when DVC runs an experiment in a temporary copy."""
    return Path(os.environ.get("DVC_ROOT") or Path.cwd()).resolve()


def tracking_uri() -> str:
    """The store as configured (credentials in an http URI included: see connect)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root() / STORE_FILE}"


def safe_uri(uri: str) -> str:
    """The URI without credentials, for messages."""
    return re.sub(r"//[^/@]*@", "//", uri)


# Against a server: every request gives up after this long and retries this often (with
# MLflow's backoff of 2 s, 4 s), unless the user set MLFLOW_HTTP_REQUEST_* themselves.
HTTP_TIMEOUT_S, HTTP_RETRIES = 20, 2
PROBE_TIMEOUT_S = 5  # the first contact: a server that accepts but never answers


def _credentials_out_of_uri(uri: str) -> str:
    """`http://user:pass@host` → `http://host` with the credentials in MLflow's env vars.

    MLflow prints the tracking URI (`View run … at: http://user:pass@…`); without the
    credentials in it, nothing can. Credentials already in the env vars win.
    """
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or parts.username is None:
        return uri
    os.environ.setdefault("MLFLOW_TRACKING_USERNAME", unquote(parts.username))
    if parts.password is not None:
        os.environ.setdefault("MLFLOW_TRACKING_PASSWORD", unquote(parts.password))
    clean = safe_uri(uri)
    os.environ["MLFLOW_TRACKING_URI"] = clean  # also for the stages DVC starts
    return clean


def _probe(uri: str) -> None:
    """Fail in seconds, with one line, where a server is down, hangs or refuses us."""
    request = Request(f"{uri.rstrip('/')}/health")
    try:
        with urlopen(request, timeout=PROBE_TIMEOUT_S):
            return
    except HTTPError:
        return  # it answers; what it thinks of us shows on the first API call
    except (URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingUnavailable(
            f"MLflow server {uri} does not answer within {PROBE_TIMEOUT_S} s ({reason}); "
            "check that it runs and that MLFLOW_TRACKING_URI is right"
        ) from None


def describe_failure(exc: Exception, uri: str) -> str:
    """One line for a failed call to the store: which server, what it said, what to fix."""
    first = first_line(exc)
    code = getattr(exc, "error_code", "")
    hint = {
        "UNAUTHENTICATED": "; check MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD",
        "PERMISSION_DENIED": "; this user lacks the permission: ask an MLflow admin for it",
    }.get(code, "")
    return f"MLflow at {safe_uri(uri)}: {first}{hint}"


def _experiment_id(name: str, location: str | None) -> str:
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.tags.get(EXPERIMENT_KIND[0]) is None:
            mlflow.MlflowClient().set_experiment_tag(experiment.experiment_id, *EXPERIMENT_KIND)
        return experiment.experiment_id
    try:
        return mlflow.create_experiment(
            name, artifact_location=location, tags=dict([EXPERIMENT_KIND])
        )
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        # Another process created it between our two calls (two clones, one server).
        found = mlflow.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def connect(params: TrackingParams) -> str:
    """Point MLflow at the store and return the experiment id, creating it if needed."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(HTTP_RETRIES))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(HTTP_TIMEOUT_S))
    if not sys.stderr.isatty():  # under DVC or a scheduler: log lines, not progress bars
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = _credentials_out_of_uri(tracking_uri())
    mlflow.set_tracking_uri(uri)
    local = uri.startswith("sqlite:")
    if uri.startswith(("http://", "https://")):
        _probe(uri)
    root = project_root()
    # Parallel first writers on a fresh SQLite store race on schema creation; serialise
    # the first contact (which creates the schema) and the experiment's creation.
    lock = FileLock(root / f".{STORE_FILE}.lock") if local else None
    try:
        if lock:
            lock.acquire(timeout=120)
        location = (root / ARTIFACT_DIR).as_uri() if local else None
        experiment_id = _experiment_id(params.experiment_name, location)
        provenance_.close_dead_runs(client(), experiment_id)
        return experiment_id
    except MlflowException as exc:
        raise TrackingUnavailable(describe_failure(exc, uri)) from None
    finally:
        if lock:
            lock.release()


def _git(*args: str) -> str | None:
    out = provenance_.git(*args)
    return None if out is None else out.strip()


def _text(value: Any) -> str:
    return "null" if value is None else str(value)


def params_changes(now: dict[str, Any], baseline: dict[str, Any]) -> str:
    """`lr=0.01 epochs=10`: the named params that differ from the baseline, shortest names.

    A key is shown by its last part unless another named param shares it (`train.seed=7`).
    """
    named = [k for k in now if k.split(".")[0] in NAMED_SECTIONS]
    leaves = [k.rsplit(".", 1)[-1] for k in named]
    return " ".join(
        f"{leaf if leaves.count(leaf) == 1 else key}={_text(now[key])}"
        for key, leaf in zip(named, leaves, strict=True)
        if key in baseline and _text(baseline[key]) != _text(now[key])
    )


def baseline_params(rev: str) -> dict[str, Any]:
    """params.yaml as committed at `rev`, flattened; empty when it is missing or invalid."""
    text = _git("show", f"{rev}:params.yaml")
    try:
        return parse_text(text).flat() if text is not None else {}
    except UserError:
        return {}


def batch_changes(now: dict[str, str], baseline: dict[str, str]) -> str:
    """`+2 batches`: batch files (path -> git blob id) in the run's data that the baseline
    commit lacks or holds other bytes of; `-1 batch`: committed ones the data lacks."""
    counts = {"+": sum(baseline.get(path) != blob for path, blob in now.items()),
              "-": sum(path not in now for path in baseline)}  # fmt: skip
    return " ".join(f"{sign}{n} batch{'es' if n > 1 else ''}" for sign, n in counts.items() if n)


def data_batches(incoming_dir: str, rev: str) -> tuple[dict[str, str], dict[str, str]]:
    """The batch files load read (its manifest) and those committed at `rev` in
    data.incoming_dir, each as path -> git blob id; both empty without git or a manifest."""
    folder = Path(incoming_dir)
    read = [str(Path(e["file"])) for e in read_json(RAW_MANIFEST, "raw table manifest")
            if Path(e["file"]).parent == folder] if RAW_MANIFEST.exists() else []  # fmt: skip
    listed = _git("ls-tree", "-r", "-z", rev, "--", str(folder))
    blobs = _git("hash-object", "--", *read) if read else ""
    if listed is None or blobs is None:
        return {}, {}
    committed = {path: meta.split()[2] for meta, path in
                 (entry.split("\t", 1) for entry in listed.split("\0") if entry)}  # fmt: skip
    # As load reads the folder (data.table_files): .csv and .parquet files, none hidden.
    committed = {p: blob for p, blob in committed.items() if not Path(p).name.startswith(".")
                 and Path(p).suffix in (".csv", ".parquet")}  # fmt: skip
    return dict(zip(read, blobs.split(), strict=True)), committed


@dataclass(frozen=True)
class RunContext:
    """What a new run is called and tagged with, and the uncommitted code it ran with."""

    name: str
    tags: dict[str, str]
    code_changes: str | None  # the diff; '' when the code is as committed; None: no git


def run_context(flat_params: dict[str, Any], data_digest: str, train_key: str) -> RunContext:
    """A run name that says what differs from the baseline, and the provenance tags.

    Dirty means code that differs from the commit. params.yaml does not count: the run
    keeps the file itself (and DVC rewrites and autostages dvc.lock during every repro).
    """
    commit = _git("rev-parse", "HEAD") or "unknown"
    changes = provenance_.code_changes()
    exp_name = os.environ.get("DVC_EXP_NAME", "")
    baseline = os.environ.get("DVC_EXP_BASELINE_REV", commit)
    differs = params_changes(flat_params, baseline_params(baseline))
    # Data too: batches that arrived (or went) since the baseline commit, so that runs on
    # other data never share a name: `baseline 1a2b3c4 +2 batches`, `lr=0.01 +1 batch`.
    more = batch_changes(*data_batches(str(flat_params["data.incoming_dir"]), baseline))
    name = " ".join(part for part in (differs or f"baseline {baseline[:7]}", more) if part)
    tags = {
        TAG_GIT_COMMIT: commit,
        TAG_GIT_DIRTY: "unknown" if changes is None else str(bool(changes)).lower(),
        TAG_DATA_DIGEST: data_digest,
        TAG_TRAIN_KEY: train_key,
        TAG_EXP_NAME: exp_name,
        TAG_EXP_REF: provenance_.exp_ref(exp_name, baseline),
        TAG_BASELINE: baseline,
        TAG_CHANGES: differs,
        TAG_DATA_CHANGES: more,
        "mlflow.source.git.commit": commit,
        **provenance_.environment_tags(),
        **provenance_.process_tags(),
    }
    tags[TAG_DESCRIPTION] = provenance(tags)
    return RunContext(name, tags, changes)


def provenance(tags: dict[str, str]) -> str:
    """What a run changed and where it came from, from its tags: `lr=0.01 (DVC experiment …)`."""
    exp_name = tags.get(TAG_EXP_NAME)
    where = f"DVC experiment {exp_name}, " if exp_name else ""
    baseline = tags.get(TAG_BASELINE, "")[:7]
    return f"{tags.get(TAG_CHANGES) or 'baseline params'} ({where}baseline {baseline})"


@dataclass(frozen=True)
class TrainedModel:
    """The MLflow run that holds a trained model, found by what the model is."""

    run_id: str
    run_name: str
    model_uri: str
    model_digest: str
    data_digest: str
    provenance: str


def find_training_run(
    experiment_id: str, train_key: str, model_digest: str | None = None
) -> TrainedModel | None:
    """The first complete run of this experiment with this training key (and model)."""
    runs = client().search_runs(
        [experiment_id],
        filter_string=f"tags.`{TAG_TRAIN_KEY}` = '{train_key}'",
        order_by=["attributes.start_time ASC"],
    )
    for run in runs:
        tags = run.data.tags
        if not tags.get(TAG_MODEL_URI):
            continue  # failed before its model was logged
        if TAG_PARENT_RUN in tags:
            continue  # a seed of `epochline seeds` or retrain.seeds: never the pipeline's run
        if model_digest is not None and tags.get(TAG_MODEL_DIGEST) != model_digest:
            continue
        return TrainedModel(
            run.info.run_id, run.info.run_name or "", tags[TAG_MODEL_URI],
            tags.get(TAG_MODEL_DIGEST, ""), tags.get(TAG_DATA_DIGEST, ""), provenance(tags),
        )  # fmt: skip
    return None


# First in the description: the runs table cuts it at about 40 characters.
HEADLINE_METRICS = ("accuracy", "roc_auc")


def describe(trained: TrainedModel, test_metrics: dict[str, float]) -> str:
    """The run's description: its test metrics first, then what it changed."""
    scores = " ".join(f"{k} {test_metrics[k]:.3f}" for k in HEADLINE_METRICS)
    return f"{scores} · {trained.provenance}"


class ModelNotInStore(UserError):
    """The outputs say which model train made, but this store holds no run of it."""


def pipeline_model(experiment_id: str) -> TrainedModel:
    """The run holding the model that train last wrote (models/model.json says which)."""
    info = read_json(MODEL_INFO, "train's model info")
    found = find_training_run(experiment_id, info["train_key"], info["model_digest"])
    if found is None:
        raise ModelNotInStore(
            f"{MODEL_INFO}: no run in the MLflow store {safe_uri(tracking_uri())} holds model "
            f"{info['model_digest']}; train it there again: dvc repro --force --downstream train"
        )
    return found


@contextmanager
def _quiet_schema_hints() -> Iterator[None]:
    with warnings.catch_warnings():
        # The 0/1 label is an integer column by design; MLflow hints about missing values.
        warnings.filterwarnings("ignore", "Hint: Inferred schema contains integer")
        # MLflow registers two equivalent local-file source types and warns that it picked one.
        warnings.filterwarnings("ignore", "The specified dataset source can be interpreted")
        yield


_CONTEXTS = {"train": "training", "val": "validation", "test": "testing"}


class TableDataset(Dataset):
    """A Parquet table as MLflow records it, known without reading it whole: the row count
    from the file's footer, the schema from a sample, the digest from streaming its bytes.
    (`mlflow.data.from_pandas` infers its schema over the whole frame: 43 s at 7 M rows.)"""

    def __init__(self, path: Path, name: str) -> None:
        self._rows = tables.row_count(path, f"{name} table")
        sample = tables.head(path, f"{name} table")
        self._columns = len(sample.columns)
        with _quiet_schema_hints():
            self._schema = infer_signature(sample).inputs
            source = resolve_dataset_source(str(path.resolve()))
        super().__init__(source, name, tables.file_digest(path)[:8])

    def _compute_digest(self) -> str:
        return self._digest  # given in __init__; MLflow calls this only when it is not

    @property
    def profile(self) -> dict[str, int]:
        return {"num_rows": self._rows, "num_elements": self._rows * self._columns}

    @property
    def schema(self) -> MlflowSchema:
        return self._schema

    def to_dict(self) -> dict[str, str]:
        config = super().to_dict()
        config["schema"] = json.dumps({"mlflow_colspec": self._schema.to_dict()})
        config["profile"] = json.dumps(self.profile)
        return config


def log_datasets(files: dict[str, Path]) -> None:
    """Each table as a training/validation/testing input of the active run."""
    datasets: list[Dataset | None] = [TableDataset(p, name) for name, p in files.items()]
    contexts: list[str | None] = [_CONTEXTS.get(n, n) for n in files]
    tags: list[dict[str, str] | None] = [None] * len(datasets)
    for attempt in range(1, DATASET_ATTEMPTS + 1):
        try:
            mlflow.log_inputs(datasets=datasets, contexts=contexts, tags_list=tags)
            return
        except MlflowException as exc:
            # Two runs logging the same dataset at once (two clones of the same data on one
            # server): the store's unique key refuses the second insert and rolls it back.
            # The dataset exists then, and the next call links it to this run.
            if attempt == DATASET_ATTEMPTS or not _same_dataset_inserted(exc):
                raise
            log.warning("dataset logged by another run at the same moment; logging again")
            time.sleep(0.2 * attempt)


DATASET_ATTEMPTS = 3


def _same_dataset_inserted(exc: MlflowException) -> bool:
    text = str(exc)
    return "dataset_pk" in text or ("UNIQUE constraint failed" in text and "datasets" in text)


def requirements() -> list[str]:
    """Given explicitly: inferring them at log time costs seconds per run."""
    return [f"{pkg}=={provenance_.release(pkg)}" for pkg in ("mlflow", "torch", "pandas", "numpy")]


def model_signature(example: pd.DataFrame, output: pd.DataFrame) -> ModelSignature:
    """Every feature column required, each of any type: the model reads numbers and
    categories from whatever types a client holds them in, and checks the values itself.
    (Declared `double`, MLflow refuses an int64 or bool column; declared `string`, a number
    or category column.) The answers' types are declared as they are."""
    with _quiet_schema_hints():
        inferred = infer_signature(example, output)
    inputs = MlflowSchema([ColSpec(AnyType(), str(name)) for name in example.columns])
    return ModelSignature(inputs, inferred.outputs)


def input_kinds(example: pd.DataFrame) -> dict[str, str]:
    """What each input column is, for a reader of the MLmodel file: a number or a category."""
    return {str(name): "number" if pd.api.types.is_numeric_dtype(column) else "category"
            for name, column in example.items()}  # fmt: skip


# The served model's code, logged as a file with every model (not imported here).
SERVING_CODE = Path(__file__).parents[1] / "serving" / "model_code.py"


def serving_code_digest() -> str:
    """sha256 of the serving code that a model logged now carries (train tags its run)."""
    return hashlib.sha256(SERVING_CODE.read_bytes()).hexdigest()


def log_model(checkpoint: Path, example: pd.DataFrame, output: pd.DataFrame) -> str:
    """Log the serving model (code + checkpoint) into the active run; return its URI."""
    with _quiet_schema_hints():
        info = mlflow.pyfunc.log_model(
            name=MODEL_NAME,
            python_model=str(SERVING_CODE),
            artifacts={"checkpoint": str(checkpoint)},
            signature=model_signature(example, output),
            input_example=example,
            pip_requirements=requirements(),
            metadata={"inputs": input_kinds(example)},
        )
    return str(info.model_uri)


def where_runs_are(experiment_id: str) -> str:
    """Where a person sees this experiment's runs: the server's UI, or `mlflow ui`'s.

    The link names the workflow: MLflow 3.17's UI otherwise opens on its GenAI pages.
    """
    uri = safe_uri(tracking_uri())
    page = f"#/experiments/{experiment_id}/runs?workflowType=machine_learning"
    if uri.startswith(("http://", "https://")):
        return f"{uri.rstrip('/')}/{page}"
    return f"`mlflow ui`, then http://127.0.0.1:5000/{page}"


def client() -> MlflowClient:
    return MlflowClient(tracking_uri())
