"""Scheduled retraining: run the pipeline, judge the new model, promote it only if better.

The loop: lock → repair what a killed retrain left → dvc repro → judge → record → promote
→ commit. With retrain.seeds = N > 1, judging trains N - 1 more seeds (train.seed + 1, …) as
`epochline seeds` does, as children of the challenger's run, and promotes the challenger
(the pipeline's model, train.seed's) only if the rule would promote every seed's model.
The record (decision.py) is built once; recording.py writes it, report.py says it.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities.model_registry import ModelVersion

from epochline.core import numerics, paths
from epochline.core.errors import Failed
from epochline.core.files import read_json, read_parquet
from epochline.core.params import Params, load_params
from epochline.data import splitting
from epochline.data.schema import Schema
from epochline.evaluation import metrics
from epochline.retrain import recording, report
from epochline.retrain.compare import Comparison, Findings, Scores, decide, held_out_elsewhere
from epochline.retrain.complete import trained_here
from epochline.retrain.decision import (
    Decision,
    Provenance,
    SeedJudgement,
    Versions,
    across_seeds,
)
from epochline.retrain.drift import BatchDrift, batch_drift
from epochline.retrain.lock import exclusive
from epochline.review import seeds
from epochline.serving.scoring import LoggedModel
from epochline.tools import dvc_repro, run_tool
from epochline.tracking import store
from epochline.tracking.registry import CHAMPION, Registry, tag_of
from epochline.tracking.store import TrainedModel
from epochline.tracking.tags import TAG_DATA_DIGEST, TAG_GIT_COMMIT, Tag

log = logging.getLogger(__name__)

# What --commit records: the pipeline's state plus the git-tracked (uncached) DVC outputs.
COMMITTED = ["dvc.lock", "params.yaml", *map(str, paths.TRACKED_OUTPUTS)]
UNCHANGED = "unchanged"


class RetrainFailed(Failed):
    pass


@dataclass(frozen=True)
class Outcome:
    status: str  # "promoted", "kept" or "unchanged"
    summary: str
    decision: Decision | None = None  # None: unchanged, nothing was judged


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _score(model_uri: str, rows: pd.DataFrame) -> Scores:
    return Scores.of(LoggedModel(model_uri).score(rows))


def _batch_rows(params: Params) -> tuple[list[str], pd.DataFrame, np.ndarray]:
    """The incoming batch files in the raw table, the table, and each row's batch ('' = base)."""
    manifest = read_json(paths.RAW_MANIFEST, "raw table manifest")
    incoming = Path(params.data.incoming_dir)
    names = [Path(e["file"]).name if Path(e["file"]).parent == incoming else "" for e in manifest]
    origin = np.repeat(names, [e["rows"] for e in manifest])
    return [n for n in names if n], read_parquet(paths.RAW, "raw table"), origin


def _drift(params: Params, registry: Registry) -> BatchDrift:
    """Rows of batches that the newest judged version did not see, against the training
    rows of the rest."""
    judged = registry.newest_judged()
    seen = tag_of(judged, Tag.BATCHES).split(",") if judged else []
    batches, raw, origin = _batch_rows(params)
    new_batches = [b for b in batches if b not in seen]
    is_new = np.isin(origin, new_batches)
    if not is_new.any():
        return BatchDrift.nothing_new(batches)
    schema = Schema.from_dict(read_json(paths.SCHEMA, "schema"))
    is_reference = splitting.is_train(raw, schema.id_column, params.split) & ~is_new
    return batch_drift(batches, new_batches, raw[is_reference], raw[is_new], origin[is_new], schema)


def _held_out_elsewhere(champion_run_id: str | None, params: Params) -> str | None:
    """Why the champion's held-out rows are not today's, if they are not."""
    if champion_run_id is None:
        return None
    return held_out_elsewhere(mlflow.get_run(champion_run_id).data.params, params)


def _judge(
    params: Params,
    registry: Registry,
    champion: ModelVersion | None,
    trained: TrainedModel,
    findings: Findings,
    experiment_id: str,
) -> tuple[Comparison, tuple[SeedJudgement, ...]]:
    """Both models, raw rows in, on the same current test rows; with retrain.seeds > 1 the
    other seeds' models too, each against the same champion (their runs are the
    challenger's run's children). `findings`: what evaluate found about the challenger,
    which can refuse it. Nothing is written but the seeds' runs."""
    test = read_parquet(paths.TEST, "test table")
    label = params.data.label_column
    rows, y = test.drop(columns=label), test[label].to_numpy()
    elsewhere = _held_out_elsewhere(champion.run_id if champion else None, params)
    base = _score(registry.uri(str(champion.version)), rows) if champion else None

    def judge(scores: Scores, found: Findings) -> Comparison:
        return decide(y, scores, base, params.retrain, elsewhere, found)

    comparison = judge(_score(trained.model_uri, rows), findings)
    if params.retrain.seeds == 1:
        return comparison, ()
    judged = (
        SeedJudgement.of(params.train.seed, trained.run_id, comparison),
        *_other_seeds(params, experiment_id, trained.run_id, findings, judge),
    )
    return across_seeds(comparison, judged), judged


def _other_seeds(
    params: Params,
    experiment_id: str,
    parent_run_id: str,
    findings: Findings,
    judge: Callable[[Scores, Findings], Comparison],
) -> list[SeedJudgement]:
    """train.seed + 1, …: each trained as `epochline seeds` trains them, and judged. What
    refuses a model is its own: a class it never predicts (the yardstick is the same)."""
    others = seeds.seeds_for(params, params.retrain.seeds)[1:]
    log.info("retrain.seeds = %d: training seeds %s too", params.retrain.seeds, others)
    classes = Schema.from_dict(read_json(paths.SCHEMA, "schema")).classes
    judged = []
    for model in seeds.train_seeds(params, experiment_id, others, parent_run_id):
        missing = metrics.never_predicted(model.answers["label"].to_numpy())
        own = replace(findings, never_predicts=None if missing is None else str(classes[missing]))
        comparison = judge(Scores.of(model.answers), own)
        judged.append(SeedJudgement.of(model.seed, model.run.run_id, comparison))
    return judged


def _provenance(registry: Registry, trained: TrainedModel, experiment_id: str) -> Provenance:
    tags = mlflow.get_run(trained.run_id).data.tags
    return Provenance(
        registered_model=registry.name,
        run_id=trained.run_id,
        run_name=trained.run_name,
        runs_link=store.where_runs_are(experiment_id),
        data_digest=tags.get(TAG_DATA_DIGEST, ""),
        git_commit=tags.get(TAG_GIT_COMMIT, ""),
    )


def _judge_and_record(
    params: Params, experiment_id: str, registry: Registry, trained: TrainedModel
) -> Outcome:
    recording.attempted(registry, trained.run_id, _now())
    # By what the model is (weights and config), not by the bytes of a file.
    known = registry.version_with_tag(Tag.MODEL_DIGEST, trained.model_digest)
    if known is not None and tag_of(known, Tag.DECISION):
        recording.unchanged(registry, known, trained.run_id)
        return Outcome(UNCHANGED, report.unchanged(trained, str(known.version), registry.name))
    champion = registry.alias(CHAMPION)
    # evaluate's, of this model: its test metrics, and what it found (yardsticks, warnings)
    test_metrics = read_json(paths.METRICS, "test metrics")
    verdict = read_json(paths.VERDICT, "evaluate's verdict")
    findings = Findings.of(verdict, params.retrain.metric)
    comparison, judged = _judge(params, registry, champion, trained, findings, experiment_id)
    drift = _drift(params, registry)
    if known is None:  # else: registered by a retrain that died before its decision
        known = registry.register(trained.model_uri, trained.run_id, trained.model_digest)
    version = str(known.version)
    registry.mark_challenger(version)
    decision = Decision(
        finished=_now(),
        comparison=comparison,
        drift=drift,
        versions=Versions(version, str(champion.version) if champion else None),
        provenance=_provenance(registry, trained, experiment_id),
        test_metrics=test_metrics,
        verdict=verdict,
        seeds=judged,
    )
    recording.record(registry, decision)
    if comparison.promoted:  # the aliases move last, after the decision is on record
        registry.promote(version, decision.versions.champion)
    return Outcome(decision.status, report.summary(decision), decision)


def _commit(decision: Decision, incoming_dir: str) -> None:
    paths_ = [p for p in [*COMMITTED, incoming_dir] if Path(p).exists()]
    run_tool(["git", "add", "--", *paths_], "git add")
    if subprocess.run(["git", "diff", "--cached", "--quiet", "--", *paths_]).returncode == 0:
        log.info("--commit: nothing changed to commit")
        return
    # Only these paths: whatever else the user had staged stays out of the commit.
    run_tool(["git", "commit", "-q", "-m", report.commit_message(decision), "--", *paths_],
             "git commit")  # fmt: skip


def _repaired(params: Params) -> Registry:
    """The registry, with a promotion or rollback that a killed process left half done
    completed first: the aliases then agree with the decisions on record."""
    registry = Registry(store.client(), params.tracking.registered_model_name)
    for repaired in registry.repair():
        log.warning("%s, left half done by a stopped process: %s", registry.name, repaired)
    return registry


def _check_seeds(params: Params) -> None:
    """retrain.seeds > 1: the seeds can be trained here, with train.numerics' kernels
    (chosen before anything loads torch: the scoring, then the seeds' training)."""
    if params.retrain.seeds > 1:
        seeds.check_one_process(params)
        seeds.seeds_for(params, params.retrain.seeds)
        numerics.select(params.train.numerics)


def retrain(commit: bool = False, push: bool = False) -> Outcome:
    params = load_params()
    _check_seeds(params)  # a user error before the pipeline runs, not after
    with exclusive(Path(params.retrain.lock_file)):
        experiment_id = store.connect(params.tracking)
        registry = _repaired(params)
        dvc_repro()
        trained = trained_here(experiment_id)
        outcome = _judge_and_record(params, experiment_id, registry, trained)
        if outcome.decision is None:
            return outcome
        # On record before --commit/--push, which can fail; the summary comes at the end.
        log.info("decision recorded: %s v%s", outcome.status, outcome.decision.versions.challenger)
        if commit:
            _commit(outcome.decision, params.data.incoming_dir)
        if push:
            run_tool([sys.executable, "-m", "dvc", "push"], "dvc push")
    return outcome


def rollback(reason: str) -> str:
    """champion ← previous-champion, with the reason on both versions."""
    params = load_params()
    with exclusive(Path(params.retrain.lock_file)):  # never while a retrain promotes
        store.connect(params.tracking)
        registry = _repaired(params)
        try:
            old, new, previous = registry.rollback(reason, _now())
        except LookupError as exc:
            raise RetrainFailed(f"rollback of {registry.name}: {exc}; nothing changed") from None
    return (
        f"rollback: champion v{old} -> v{new}; previous-champion "
        f"{'v' + previous if previous else 'none'}; reason: {reason}"
    )
