"""`epochline seeds N`: the current params trained with N seeds, and each test metric's spread.

The seeds train in this process, each by the train stage's own code (training/runs.py
seed_run) and each scored as evaluate scores (raw test rows through the logged model):
one import of torch and MLflow instead of a DVC experiment per seed (README: Seed spread
has the measurement). One parent run holds the spread (test_<m>_mean, _std, _min, _max);
the N runs are its children (MLflow's mlflow.parentRunId), which the UI nests under it.
The pipeline's own run is not one of them: it stays where train logged it, a top-level
run that model.json, evaluate and the registry point at; every seed is a fresh run.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from mlflow.entities import Metric, Param, Run, RunStatus, RunTag
from mlflow.tracking import MlflowClient
from mlflow.tracking.context.registry import resolve_tags

from epochline.core import numerics, paths
from epochline.core.errors import UserError
from epochline.core.files import read_parquet
from epochline.core.params import Params, load_params
from epochline.core.runner import shielded
from epochline.data import tables
from epochline.evaluation import metrics
from epochline.tools import dvc_repro
from epochline.tracking import store
from epochline.tracking.tags import TAG_DESCRIPTION, TAG_PARENT_RUN, TAG_SEEDS, TAG_TRAIN_KEY

if TYPE_CHECKING:
    from epochline.tracking.store import TrainedModel

log = logging.getLogger(__name__)

SEED_PARAM = "train.seed"
# The spread of each test metric on the parent run: test_<m>_<stat>. std is the sample
# standard deviation (ddof=1): the seeds are a sample of the seeds one could have drawn.
STATS = ("mean", "std", "min", "max")
SEED_MAX = 2**32 - 1  # as params.py allows train.seed


class SeedsUnavailable(UserError):
    """The seeds cannot be trained as asked (their range, several training processes)."""


@dataclass(frozen=True)
class SeedModel:
    """One seed's model: its run, its answers on the test rows, its test metrics."""

    seed: int
    run: TrainedModel
    answers: pd.DataFrame  # LoggedModel.score's: probability, label, class
    metrics: dict[str, float]  # metrics.NAMES, bare (`accuracy`, not `test_accuracy`)


def aggregate(values: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """test_<m>_mean, _std (ddof=1), _min and _max over the seeds, for every m in NAMES."""
    if len(values) < 2:
        raise ValueError(f"a spread needs 2 seeds or more, got {len(values)}")
    found: dict[str, float] = {}
    for name in metrics.NAMES:
        column = np.array([v[name] for v in values], dtype=float)
        stats = (column.mean(), column.std(ddof=1), column.min(), column.max())
        found |= {f"test_{name}_{s}": float(x) for s, x in zip(STATS, stats, strict=True)}
    return found


def spread(run: Run) -> dict[str, dict[str, float]] | None:
    """metric → {mean, std, min, max, n} from a seeds parent run; None for any other run."""
    seeds = run.data.tags.get(TAG_SEEDS)
    if not seeds:
        return None
    n = float(len(seeds.split(",")))
    logged = run.data.metrics
    return {
        name: {s: logged[f"test_{name}_{s}"] for s in STATS} | {"n": n}
        for name in metrics.NAMES
        if all(f"test_{name}_{s}" in logged for s in STATS)
    }


def children(client: MlflowClient, parent_run_id: str) -> list[Run]:
    """The runs whose parent is `parent_run_id`, by seed (train.seed)."""
    parent = client.get_run(parent_run_id)
    found = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.`{TAG_PARENT_RUN}` = '{parent_run_id}'"
    )
    return sorted(found, key=lambda r: int(r.data.params.get(SEED_PARAM, "0")))


def seeds_for(params: Params, n: int) -> list[int]:
    """train.seed, train.seed + 1, …: n of them."""
    first = params.train.seed
    if first + n - 1 > SEED_MAX:
        raise SeedsUnavailable(
            f"train.seed = {first} leaves no room for {n} seeds (the last would be "
            f"{first + n - 1}; allowed: up to {SEED_MAX}); lower train.seed"
        )
    return list(range(first, first + n))


def with_seed(params: Params, seed: int) -> Params:
    return params.model_copy(update={"train": params.train.model_copy(update={"seed": seed})})


def check_one_process(params: Params) -> None:
    if params.train.world_size > 1:
        raise SeedsUnavailable(
            f"train.nproc_per_node = {params.train.nproc_per_node}, train.nnodes = "
            f"{params.train.nnodes}: seeds train in this one process, and a model trained "
            "by one process is another model; set both to 1, or queue DVC experiments: "
            "dvc exp run --queue -S train.seed=…"
        )


def _scored(trained: TrainedModel, seed: int, test: pd.DataFrame, label: str) -> SeedModel:
    """Raw test rows through the logged model (evaluate's answers, bit for bit); its test_ metrics
    and its description (the test metrics first) logged on its run, as evaluate logs them."""
    from epochline.serving.scoring import LoggedModel  # MLflow's pyfunc: seconds to import

    answers = LoggedModel(trained.model_uri).score(test)
    y = test[label].to_numpy()
    values = metrics.classification_metrics(
        y, answers["probability"].to_numpy(), answers["label"].to_numpy()
    )
    now = int(time.time() * 1000)
    logged = [Metric(f"test_{k}", v, now, 0) for k, v in values.items()]
    described = RunTag(TAG_DESCRIPTION, store.describe(trained, values))
    with shielded():
        store.client().log_batch(trained.run_id, metrics=logged, tags=[described])
    return SeedModel(seed, trained, answers, values)


def train_seeds(
    params: Params, experiment_id: str, seeds: Sequence[int], parent_run_id: str
) -> list[SeedModel]:
    """Each seed's model trained and logged as the train stage would with that seed, as a
    child of `parent_run_id`, and scored on the test rows as evaluate scores."""
    check_one_process(params)
    numerics.select(params.train.numerics)  # before torch loads, as the train stage does
    from epochline.training import runs  # torch loads here

    test = read_parquet(paths.TEST, "test table")
    found: list[SeedModel] = []
    # The checkpoints go here, not to models/model.pt: that is train's output.
    with tempfile.TemporaryDirectory(prefix="epochline-seeds-") as folder:
        for seed in seeds:
            log.info("seed %d (%d of %d)", seed, len(found) + 1, len(seeds))
            tags = {TAG_PARENT_RUN: parent_run_id}
            run = runs.seed_run(with_seed(params, seed), experiment_id, tags, f"seed {seed}",
                                Path(folder))  # fmt: skip
            found.append(_scored(run, seed, test, params.data.label_column))
    return found


def _open_parent(params: Params, experiment_id: str, seeds: Sequence[int]) -> tuple[str, str]:
    """The parent run, RUNNING: the params but train.seed, the provenance tags of a run
    (less the training key: it trains nothing itself), the seeds. Its id and name."""
    from epochline.training.runs import SPLITS

    flat = params.flat()
    context = store.run_context(flat, tables.digest(SPLITS), "")
    tags = {k: v for k, v in context.tags.items() if k != TAG_TRAIN_KEY}
    tags[TAG_SEEDS] = ",".join(map(str, seeds))
    name = f"seeds {seeds[0]}-{seeds[-1]} · {context.name}"
    client = store.client()
    run = client.create_run(experiment_id, tags=resolve_tags(tags), run_name=name)
    logged = [Param(k, str(v)) for k, v in flat.items() if k != SEED_PARAM]  # as log_params
    client.log_batch(run.info.run_id, params=logged)
    return run.info.run_id, name


def _close_parent(parent_run_id: str, found: dict[str, float], n: int) -> None:
    """The spread on the parent, a description that leads with it, and FINISHED."""
    client = store.client()
    now = int(time.time() * 1000)
    headline = " ".join(
        f"{m} {found[f'test_{m}_mean']:.3f} ± {found[f'test_{m}_std']:.3f}"
        for m in store.HEADLINE_METRICS
    )
    before = client.get_run(parent_run_id).data.tags.get(TAG_DESCRIPTION, "")
    described = RunTag(TAG_DESCRIPTION, f"{headline} over {n} seeds · {before}")
    with shielded():
        client.log_batch(
            parent_run_id,
            metrics=[Metric(k, v, now, 0) for k, v in found.items()],
            tags=[described],
        )
        client.set_terminated(parent_run_id, RunStatus.to_string(RunStatus.FINISHED))


def run_seeds(n: int) -> str:
    """`epochline seeds N`: the data stages brought up to date, then N seeds trained under
    one parent run that holds the spread; returns the summary."""
    params = load_params()
    check_one_process(params)
    seeds = seeds_for(params, n)
    dvc_repro("split")  # the data stages' outputs, current: nothing runs when they are
    experiment_id = store.connect(params.tracking)
    numerics.select(params.train.numerics)  # before _open_parent loads torch
    parent_run_id, name = _open_parent(params, experiment_id, seeds)
    try:
        models = train_seeds(params, experiment_id, seeds, parent_run_id)
        found = aggregate([m.metrics for m in models])
        _close_parent(parent_run_id, found, len(seeds))
    except BaseException as exc:
        # A stopped one (Ctrl-C, SIGTERM) KILLED, as MLflow's own runs end then.
        status = RunStatus.FAILED if isinstance(exc, Exception) else RunStatus.KILLED
        with shielded():
            store.client().set_terminated(parent_run_id, RunStatus.to_string(status))
        raise
    return summary(name, parent_run_id, seeds, found, store.where_runs_are(experiment_id))


def summary(
    name: str, parent_run_id: str, seeds: Sequence[int], found: Mapping[str, float], link: str
) -> str:
    """What `epochline seeds` prints: the parent, each test metric's spread, where to look."""
    width = max(map(len, metrics.NAMES))
    rows = [
        f"  {m:<{width}}  {found[f'test_{m}_mean']:.4f} ± {found[f'test_{m}_std']:.4f}  "
        f"[{found[f'test_{m}_min']:.4f}, {found[f'test_{m}_max']:.4f}]"
        for m in metrics.NAMES
    ]
    seed_list = ", ".join(map(str, seeds))
    return "\n".join([
        f"seeds: parent run '{name}' ({parent_run_id}), {len(seeds)} child runs",
        f"  {'test metric':<{width}}  mean ± std [min, max] over seeds {seed_list} (std: ddof=1)",
        *rows,
        f"  runs: {link}" + (" (start it: mlflow ui)" if "mlflow ui" in link else ""),
    ])  # fmt: skip
