"""`epochline card TARGET`: the model card (evaluation/card.py) of any model the store holds,
with its run's lineage and, for a registered version, its decision record.

The target is read as `epochline compare` reads it (review/targets.py); a seeds parent's card
is its first seed's model. The run's own params, metrics and tags say what it was; its rows
are scored again only when they are the workspace's (same data digest), and sliced only when
the workspace prepared them as the run's model was trained (the same normalize and split
params): otherwise the card says why it has none.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import replace
from pathlib import Path

from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from epochline.core import paths
from epochline.core.errors import first_line
from epochline.core.files import read_json, read_parquet, write_with
from epochline.core.params import Params, load_params
from epochline.data import tables
from epochline.data.preprocessing import Preprocessor
from epochline.data.schema import Schema
from epochline.evaluation import metrics
from epochline.evaluation.baselines import RUN_PREFIX
from epochline.evaluation.card import (
    ARTIFACT,
    HISTORY_KEYS,
    RUN_HEADING,
    SPLIT_NAMES,
    YARDSTICKS,
    Card,
    Data,
    Evaluation,
    Fitted,
    Made,
    RunLineage,
    Settings,
    SplitRows,
    Tested,
    Training,
    build,
    code_span,
    lineage,
    render,
    run_section,
)
from epochline.evaluation.verdict import Verdict
from epochline.review import seeds
from epochline.review.targets import Side, TargetNotFound, resolve
from epochline.tracking import store
from epochline.tracking.tags import (
    TAG_BELOW_BASELINE,
    TAG_DATA_DIGEST,
    TAG_MODEL_DIGEST,
    TAG_NEVER_PREDICTS,
    TAG_SEEDS,
    TAG_TRAIN_KEY,
)

log = logging.getLogger(__name__)

# The params that decide how the test rows are prepared for the model (normalize's and
# split's in dvc.yaml): the workspace's data/preprocessor.json describes a run's model only
# when they are the run's.
PREPARED_BY = ("data.label_column", "data.id_column", "data.max_categories")


def made_from_run(client: MlflowClient, run: Run) -> Made:
    m, tags, run_id = run.data.metrics, run.data.tags, run.info.run_id
    per_key = {k: {h.step: h.value for h in client.get_metric_history(run_id, k)}
               for k in HISTORY_KEYS}  # fmt: skip
    epochs = sorted(set().union(*per_key.values()))
    history = [{"epoch": e, **{k: per_key[k][e] for k in HISTORY_KEYS if e in per_key[k]}}
               for e in epochs]  # fmt: skip
    train = {k: v for k, v in run.data.params.items() if k.startswith("train.")}
    training = Training(train, int(m.get("best_epoch", 0)),
                        int(m.get("epochs_trained", len(history))), int(m.get("batch_size", 0)),
                        history)  # fmt: skip
    return Made(tags.get(TAG_MODEL_DIGEST, "?"), tags.get(TAG_TRAIN_KEY, "?"),
                tags.get(TAG_DATA_DIGEST, "?"), float(m.get("threshold", float("nan"))),
                training)  # fmt: skip


def yardsticks_of_run(run_metrics: dict[str, float]) -> dict[str, dict[str, float]]:
    found = {}
    for name in YARDSTICKS:
        prefix = RUN_PREFIX[name]
        values = {k.removeprefix(prefix): v for k, v in run_metrics.items() if k.startswith(prefix)}
        if values:
            found[name] = values
    return found


def settings_of_run(run: Run, params: Params) -> Settings:
    """What the run was trained on, as it logged it; the intervals drawn as the workspace's
    params say (they are this card's, not the model's)."""
    flat = run.data.params
    return replace(Settings.of(params), source=flat.get("data.source", "?"),
                   threshold_rule=flat.get("evaluate.threshold", "?"))  # fmt: skip


def preparation(run: Run, params: Params) -> str:
    """Why the workspace's data/preprocessor.json would not describe the run's model (its
    normalize and split params are not the workspace's); "" when it would."""
    here = {k: str(v) for k, v in params.flat().items()}
    keys = [*PREPARED_BY, *sorted(k for k in here if k.startswith("split."))]
    theirs = run.data.params
    differ = [k for k in keys if theirs.get(k, here[k]) != here[k]]
    if not differ:
        return ""
    shown = ", ".join(f"{k} {theirs[k]}" for k in differ)
    ours = ", ".join(here[k] for k in differ)
    return f"the run's preprocessing ({shown}) is not the workspace's ({ours})"


def _fitted(params: Params) -> Fitted:
    schema = Schema.from_dict(read_json(paths.SCHEMA, "schema"))
    preprocessor = Preprocessor.from_dict(read_json(paths.PREPROCESSOR, "preprocessing"))
    return Fitted(schema, preprocessor, params.data.max_categories)


def _tested(run: Run, model_uri: str, judged: Verdict) -> Tested | str:
    """The workspace's test rows with the run's model's answers, or why not."""
    from epochline.serving.scoring import LoggedModel  # MLflow's model loading: only here

    if not all(p.exists() for p in paths.SPLIT_FILES.values()):
        return "the workspace has no data/split tables (dvc pull, or dvc repro)"
    here = tables.digest(paths.SPLIT_FILES)
    theirs = run.data.tags.get(TAG_DATA_DIGEST, "?")
    if theirs != here:
        return f"the run's data (digest `{theirs}`) is not the workspace's (`{here}`)"
    test = read_parquet(paths.TEST, "test table")
    label = run.data.params.get("data.label_column", "label")
    try:
        answers = LoggedModel(model_uri).score(test)
        y = test[label].to_numpy()
    except (MlflowException, OSError, ValueError, KeyError) as exc:
        return f"its model could not score the test rows ({first_line(exc)})"
    prob, pred = answers["probability"].to_numpy(), answers["label"].to_numpy()
    # Computed as evaluate computes them, from the same rows and answers.
    values = metrics.classification_metrics(y, prob, pred)
    return Tested(test, y, prob, pred, values, yardsticks_of_run(run.data.metrics),
                  tuple(judged.lines()))  # fmt: skip


def _dataset_rows(run: Run) -> tuple[SplitRows, ...]:
    found = {}
    for logged in run.inputs.dataset_inputs if run.inputs else []:
        profile = json.loads(logged.dataset.profile or "{}")
        name = logged.dataset.name
        found[name] = SplitRows(name, int(profile.get("num_rows", 0)), None)
    return tuple(found[n] for n in SPLIT_NAMES if n in found)


def _without_rows(run: Run, made: Made, settings: Settings, judged: Verdict, why: str) -> Card:
    """The card from what the run logged alone: a metric it never logged shows as "-"."""
    m = run.data.metrics
    values = {k: m[f"test_{k}"] for k in metrics.NAMES if f"test_{k}" in m}
    splits = _dataset_rows(run)
    rows = next((s.rows for s in splits if s.name == "test"), 0)
    data = Data(settings.source, made.data_digest, splits, (), None, {})
    evaluation = Evaluation(rows, values, {}, settings.confidence, 0,
                            yardsticks_of_run(m), made.threshold, settings.threshold_rule,
                            tuple(judged.lines()))  # fmt: skip
    return Card(made.model_digest, made.train_key, data, made.training, evaluation, None, why,
                (), data.source == "synthetic")  # fmt: skip


def run_card(client: MlflowClient, side: Side, params: Params) -> Card:
    """The card of the model `side` names: its run's (a seeds parent: its first seed's)."""
    run = _model_run(client, side)
    made = made_from_run(client, run)
    settings = settings_of_run(run, params)
    tags = run.data.tags
    judged = Verdict(tags.get(TAG_NEVER_PREDICTS), tags.get(TAG_BELOW_BASELINE))
    otherwise = preparation(run, params)  # the more telling reason: checked first
    tested = _tested(run, side.model_uri, judged)
    if isinstance(tested, str):
        card = _without_rows(run, made, settings, judged, otherwise or tested)
    else:
        label = run.data.params.get("data.label_column", params.data.label_column)
        card = build(made, tested, settings, label, otherwise or _fitted(params))
    return replace(card, run=_run_lineage(client, side, run))


def _model_run(client: MlflowClient, side: Side) -> Run:
    """The run that trained the side's model: its own, or a seeds parent's first seed's."""
    if side.model_run_id == side.run.info.run_id:
        return side.run
    return client.get_run(side.model_run_id)


def _run_lineage(client: MlflowClient, side: Side, run: Run, *notes: str) -> RunLineage:
    drift = _drift(client, run.info.run_id) if side.version is not None else ()
    part = lineage(client, run, side.version, drift=drift)
    return replace(part, notes=(*(_seeds_notes(side) if side.seeds else ()), *notes))


def logged_card(client: MlflowClient, side: Side) -> str | None:
    """The card evaluate logged for the model's run (artifact model_card.md): slices of the
    run's own test rows, whatever the workspace holds now (a champion trained on fewer
    batches than are here). Its run part is written anew: the version's decision record,
    rollbacks and drift came later. None where the run holds no card (evaluate never ran
    on it, an older run, a seed's run)."""
    run = _model_run(client, side)
    if ARTIFACT not in {a.path for a in client.list_artifacts(run.info.run_id)}:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        text = Path(client.download_artifacts(run.info.run_id, ARTIFACT, tmp)).read_text()
    file_part = text.split(f"\n{RUN_HEADING}\n")[0].rstrip("\n") + "\n"
    note = f"this card is the one evaluate logged for the run (artifact `{ARTIFACT}`)"
    return file_part + run_section(_run_lineage(client, side, run, note))


def _seeds_notes(side: Side) -> tuple[str, ...]:
    parent = side.run
    first = f"a seeds parent: run `{parent.info.run_name}` (`{parent.info.run_id}`), seeds "
    first += f"{parent.data.tags[TAG_SEEDS]}; this card is its first seed's model"
    spread = seeds.spread(parent) or {}
    shown = [f"{name} mean {s['mean']:.4f} ± {s['std']:.4f} (sd)" for name, s in spread.items()
             if name in ("accuracy", "roc_auc")]  # fmt: skip
    return (first, f"over the seeds: {', '.join(shown)}") if shown else (first,)


def _drift(client: MlflowClient, run_id: str) -> tuple[str, ...]:
    """What the run's retrain saw (its retrain/report.json), one line per drifted feature."""
    with tempfile.TemporaryDirectory(prefix="epochline-card-") as tmp:
        try:
            local = client.download_artifacts(run_id, "retrain/report.json", tmp)
        except (MlflowException, OSError):
            return ()
        drift = json.loads(Path(local).read_text()).get("drift") or {}
    lines = [f"{code_span(f['feature'])}: PSI {f['psi']:.4f}, {f['test']} statistic "
             f"{f['statistic']:.4f} (p {f['p_value']:.4f})"
             for f in drift.get("features", []) if f.get("drifted")]  # fmt: skip
    label = drift.get("label") or {}
    if label.get("new_positive_rate") is not None and label.get("reference_positive_rate"):
        lines.append(f"positive rate {label['reference_positive_rate']:.4f} in training, "
                     f"{label['new_positive_rate']:.4f} in the new rows")  # fmt: skip
    if not lines and drift.get("new_rows"):
        lines.append(f"{drift['new_rows']} new rows, no feature drifted")
    return tuple(lines)


def card_command(target: str | None, output: Path | None) -> str:
    """The card of a run or registered version (default: the pipeline's model), with the
    run's lineage; written to `output` too when given."""
    params = load_params()
    experiment_id = store.connect(params.tracking)
    client = store.client()
    if target is None:
        target = store.pipeline_model(experiment_id).run_id
    try:
        side = resolve(client, target, params, experiment_id)
    except TargetNotFound as exc:  # say whose error it is
        raise TargetNotFound(f"card: {exc}") from None
    text = logged_card(client, side) or render(run_card(client, side, params))
    if output is not None:
        write_with(output, lambda tmp: tmp.write_text(text))
    return text.removesuffix("\n")  # echo adds it back
