"""The model card: what a model was trained and tested on, how good it is, where it is weak.

One renderer (`render`) from plain inputs (`Card`). evaluate writes it for the pipeline's
model as reports/model_card.md: the same bytes for the same params, data and code, so
nothing of the run, the store or the machine goes in (no run id, commit, time or URI).
The run's copy (artifact model_card.md) and `epochline card TARGET` add the run's lineage
at the end, and for a registered version its decision record: the file is their prefix.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from epochline.core import paths
from epochline.core.errors import UserError, first_line
from epochline.core.files import parquet_file, read_json, read_parquet, write_with
from epochline.core.params import Params, load_params
from epochline.data import tables
from epochline.data.preprocessing import Preprocessor
from epochline.data.schema import CATEGORICAL, Schema
from epochline.evaluation import intervals, metrics, slices
from epochline.evaluation.baselines import LOGISTIC, MAJORITY, RUN_PREFIX
from epochline.evaluation.intervals import Interval
from epochline.evaluation.slices import Slice
from epochline.evaluation.verdict import Verdict
from epochline.serving.model_code import OTHER, category_texts
from epochline.tracking import store
from epochline.tracking.tags import (
    PREFIX,
    TAG_BELOW_BASELINE,
    TAG_DATA_DIGEST,
    TAG_GIT_COMMIT,
    TAG_GIT_DIRTY,
    TAG_MODEL_DIGEST,
    TAG_MODEL_URI,
    TAG_NEVER_PREDICTS,
    TAG_TRAIN_KEY,
    Tag,
)

log = logging.getLogger(__name__)

ARTIFACT = "model_card.md"  # the run's copy, with its lineage
WORST = 10  # slices in the opening table
CURVE_ROWS = 8  # epochs in the training table (the best and the last always among them)
YARDSTICKS = (LOGISTIC, MAJORITY)
HISTORY_KEYS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")
SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class SplitRows:
    name: str
    rows: int
    positives: int | None  # None: not known (a run whose data is not the workspace's)


@dataclass(frozen=True)
class FeatureRow:
    name: str
    kind: str
    held: str  # how the source holds it: number, text, bool
    inputs: str  # what the model makes of it


@dataclass(frozen=True)
class Data:
    source: str
    digest: str
    splits: tuple[SplitRows, ...]
    features: tuple[FeatureRow, ...]  # empty: not known here
    classes: tuple[str, str] | None  # (negative, positive) as the data names them
    hashes: dict[str, str]  # each split table's sha256 (16 hex digits)


@dataclass(frozen=True)
class Training:
    params: dict[str, str]  # train.*, as the run logs them
    best_epoch: int
    epochs_trained: int
    batch_size: int
    history: list[dict[str, float]]  # per epoch: epoch and HISTORY_KEYS


@dataclass(frozen=True)
class Evaluation:
    rows: int
    metrics: dict[str, float]  # metrics.NAMES
    intervals: dict[str, Interval | None]  # empty: not computed
    confidence: float
    resamples: int
    yardsticks: dict[str, dict[str, float]]  # by yardstick name
    threshold: float
    threshold_rule: str
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class RunLineage:
    """The run's part: only in the run's copy and `epochline card`'s output."""

    run_id: str
    run_name: str
    commit: str
    dirty: str
    model_uri: str
    artifacts: tuple[str, ...]
    version: ModelVersion | None = None  # the registered version the card is for
    drift: tuple[str, ...] = ()  # what its retrain saw, one line each


@dataclass(frozen=True)
class Card:
    model_digest: str
    train_key: str
    data: Data
    training: Training
    evaluation: Evaluation
    slices: list[Slice] | None
    no_slices: str  # why there are none, when there are none
    capped: tuple[str, ...]  # one line per categorical feature whose categories were capped
    synthetic: bool
    run: RunLineage | None = field(default=None)


# --- rendering


def _f(value: float | None) -> str:
    return "-" if value is None or np.isnan(value) else f"{value:.4f}"


def _code(text: object) -> str:
    """Text as a code span (`<missing>` stays visible in HTML); `|` escaped for tables."""
    text = str(text).replace("|", "\\|")
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _interval(found: Interval | None) -> str:
    return "-" if found is None else f"{found.low:.4f} to {found.high:.4f}"


def _summary(card: Card) -> list[str]:
    e = card.evaluation
    parts = []
    for name, shown in (("accuracy", "accuracy"), ("roc_auc", "ROC AUC")):
        found = e.intervals.get(name)
        within = f" ({e.confidence:.0%} interval {_interval(found)})" if found else ""
        parts.append(f"{shown} **{_f(e.metrics[name])}**{within}")
    lr = e.yardsticks.get(LOGISTIC)
    against = (f" The logistic regression fitted on the same rows: accuracy "
               f"{_f(lr['accuracy'])}, ROC AUC {_f(lr['roc_auc'])}." if lr else "")  # fmt: skip
    return [
        "# Model card",
        "",
        f"Model `{card.model_digest}`, a network trained on {_code(card.data.source)} data "
        f"(digest `{card.data.digest}`): on {e.rows} test rows, {parts[0]}, {parts[1]}.{against}",
    ]


SLICE_HEAD = [
    "| feature | slice | rows | positives | accuracy | vs all rows | ROC AUC | log loss | note |",
    "|---|---|--:|--:|--:|--:|--:|--:|---|",
]


def _slice_line(s: Slice, overall: float) -> str:
    note = f"{slices.FEW} (< {slices.FEW_ROWS})" if s.few else ""
    return (f"| {_code(s.feature)} | {_code(s.name)} | {s.rows} | {s.positives} | "
            f"{_f(s.accuracy)} | {s.accuracy - overall:+.4f} | {_f(s.roc_auc)} | "
            f"{_f(s.log_loss)} | {note} |")  # fmt: skip


def _slices(card: Card) -> list[str]:
    lines = ["", "## Slices", ""]
    if card.slices is None:
        return [*lines, f"Slices could not be computed: {card.no_slices}."]
    overall = card.evaluation.metrics["accuracy"]
    bins = slices.bin_count(card.evaluation.rows)
    lines += [
        f"The {min(WORST, len(card.slices))} of {len(card.slices)} slices of the test rows "
        "with the lowest accuracy (ties: fewer rows first). A slice is a category of a "
        f"categorical feature as the model sees it, or a {'decile' if bins == 10 else 'quartile'}"
        " bin of a numeric one (bins merge at tied values); every slice is under *All slices*.",
        "",
        *SLICE_HEAD,
    ]
    return lines + [_slice_line(s, overall) for s in slices.worst(card.slices, WORST)]


def _data(card: Card) -> list[str]:
    d = card.data
    lines = ["", "## Data", "", f"Source {_code(d.source)}, digest `{d.digest}`."]
    if d.classes:
        lines[-1] += f" Classes: {_code(d.classes[0])} (0) and {_code(d.classes[1])} (1)."
    lines += ["", "| split | rows | positives | positive rate |", "|---|--:|--:|--:|"]
    for s in d.splits:
        rate = "-" if s.positives is None or not s.rows else _f(s.positives / s.rows)
        shown = "-" if s.positives is None else str(s.positives)
        lines.append(f"| {s.name} | {s.rows} | {shown} | {rate} |")
    if not d.features:
        return [*lines, "", "The features' kinds are not known here (see *Slices*)."]
    lines += ["", "| feature | kind | held as | model inputs |", "|---|---|---|---|"]
    lines += [f"| {_code(f.name)} | {f.kind} | {f.held} | {f.inputs} |" for f in d.features]
    return lines


def _curve_epochs(history: list[dict[str, float]], best: int) -> list[int]:
    last = len(history)
    picks = np.linspace(1, last, min(CURVE_ROWS, last)).round().astype(int).tolist()
    return sorted({*picks, min(best, last)} - {0})


def _training(card: Card) -> list[str]:
    t = card.training
    lines = ["", "## Training", "",
             f"Best epoch {t.best_epoch} of {t.epochs_trained} (its weights are the model); "
             f"batch size {t.batch_size}. The params:", "",
             "| param | value |", "|---|---|"]  # fmt: skip
    lines += [f"| `{k}` | {_code(v)} |" for k, v in sorted(t.params.items())]
    if not t.history:
        return lines
    lines += ["", "The curves at a few epochs (`dvc plots show` draws every one):", "",
              "| epoch | train loss | val loss | train accuracy | val accuracy |",
              "|--:|--:|--:|--:|--:|"]  # fmt: skip
    for epoch in _curve_epochs(t.history, t.best_epoch):
        row = t.history[epoch - 1]
        mark = " (best)" if epoch == t.best_epoch else ""
        cells = " | ".join(_f(row.get(k)) for k in HISTORY_KEYS)
        lines.append(f"| {epoch}{mark} | {cells} |")
    return lines


def _evaluation(card: Card) -> list[str]:
    e = card.evaluation
    names = [y for y in YARDSTICKS if y in e.yardsticks]
    how = (f"{e.confidence:.0%} percentile bootstrap interval ({e.resamples} resamples of the "
           "test rows)" if e.intervals else "no interval: the test rows are not here")  # fmt: skip
    lines = ["", "## Evaluation", "",
             f"On {e.rows} test rows, threshold {e.threshold:.4f} (evaluate.threshold: "
             f"{_code(e.threshold_rule)}); {how}. The yardsticks are fitted on the same "
             "training rows and inputs.", "",
             f"| metric | network | interval | {' | '.join(names)} |",
             "|---|--:|---|" + "--:|" * len(names)]  # fmt: skip
    for name in metrics.NAMES:
        found = " | ".join(_f(e.yardsticks[y].get(name)) for y in names)
        lines.append(f"| {name} | {_f(e.metrics.get(name))} | "
                     f"{_interval(e.intervals.get(name))} | {found} |")  # fmt: skip
    if e.warnings:
        lines += ["", *[f"- {w}" for w in e.warnings]]
    return lines


def _all_slices(card: Card) -> list[str]:
    if not card.slices:
        return []
    overall = card.evaluation.metrics["accuracy"]
    lines = ["", "## All slices", "", "By feature, in the table's order.", "", *SLICE_HEAD]
    return lines + [_slice_line(s, overall) for s in card.slices]


def _limits(card: Card) -> list[str]:
    lines = ["", "## Limits", ""]
    if card.synthetic:
        lines.append("- The data is synthetic (data.source: synthetic): these numbers say "
                     "the pipeline works, not how a model does on real data.")  # fmt: skip
    lines += [f"- {line}" for line in card.capped]
    few = [s for s in card.slices or [] if s.few]
    if few:
        listed = ", ".join(f"{_code(s.feature)} {_code(s.name)} ({s.rows})" for s in few)
        lines.append(f"- Slices with fewer than {slices.FEW_ROWS} test rows, whose metrics "
                     f"are noise more than signal: {listed}.")  # fmt: skip
    elif card.slices is not None:
        lines.append(f"- Every slice holds at least {slices.FEW_ROWS} test rows.")
    lines += [f"- {w}" for w in card.evaluation.warnings]
    if card.run is not None and card.run.drift:
        lines.append("- Drift the retrain saw in the new rows (see *Decision record*).")
    return lines


def _lineage(card: Card) -> list[str]:
    d = card.data
    lines = ["", "## Lineage", "", f"- model `{card.model_digest}` (weights and config)",
             f"- training key `{card.train_key}` (params, data and code train consumed)",
             f"- data digest `{d.digest}` (the split tables)"]  # fmt: skip
    lines += [f"- {name} table sha256 `{h}`" for name, h in d.hashes.items()]
    lines.append("- `epochline card` prints this card with the run's id, commit and the "
                 "`epochline reproduce RUN_ID` command that rebuilds the model.")  # fmt: skip
    return lines


def _run_part(run: RunLineage) -> list[str]:
    lines = ["", "## The run", "",
             f"- run `{run.run_name}` (`{run.run_id}`)",
             f"- commit `{run.commit}` (uncommitted changes: {run.dirty})",
             f"- model `{run.model_uri}`",
             f"- rebuild: `epochline reproduce {run.run_id}`"]  # fmt: skip
    if run.artifacts:
        lines.append(f"- artifacts: {', '.join(_code(a) for a in run.artifacts)}")
    if run.version is None:
        return lines
    return lines + _decision(run.version, run.drift)


DECISION_TAGS = (Tag.DECISION, Tag.REASON, Tag.METRIC, Tag.CHALLENGER_VALUE, Tag.CHAMPION_VALUE,
                 Tag.CHAMPION_VERSION, Tag.DELTA, Tag.DELTA_CI_LOW, Tag.DELTA_CI_HIGH,
                 Tag.P_VALUE, Tag.BATCHES, Tag.REPLACED_VERSION, Tag.ROLLED_BACK,
                 Tag.RESTORED_BY_ROLLBACK, Tag.ROLLBACK_REASON)  # fmt: skip


def _decision(version: ModelVersion, drift: tuple[str, ...]) -> list[str]:
    aliases = ", ".join(sorted(version.aliases or [])) or "none"
    lines = ["", "## Decision record", "",
             f"Registered model {_code(version.name)} version {version.version} (aliases: "
             f"{aliases})."]  # fmt: skip
    tags = version.tags or {}
    found = [(k, tags[f"{PREFIX}{k}"]) for k in DECISION_TAGS if tags.get(f"{PREFIX}{k}")]
    if not found:
        return [*lines, "", "No retrain has judged it yet."]
    lines += ["", "| record | value |", "|---|---|"]
    lines += [f"| {key} | {_code(value)} |" for key, value in found]
    if drift:
        lines += ["", "Drift the retrain saw in the new rows:", "", *[f"- {d}" for d in drift]]
    return lines


def render(card: Card) -> str:
    """The card as Markdown: the slices first, then data, training, evaluation, limits,
    lineage; the run's part only when rendered for a run."""
    parts = [_summary(card), _slices(card), _data(card), _training(card), _evaluation(card),
             _all_slices(card), _limits(card), _lineage(card)]  # fmt: skip
    if card.run is not None:
        parts.append(_run_part(card.run))
    return "\n".join(line for part in parts for line in part) + "\n"


# --- inputs: from the workspace's files (evaluate, and a run whose data is the workspace's)


@dataclass(frozen=True)
class Made:
    """What train made: the model, its data, its decision threshold and its fit."""

    model_digest: str
    train_key: str
    data_digest: str
    threshold: float
    training: Training


@dataclass(frozen=True)
class Tested:
    """The test rows (raw) and a model's answers on them."""

    test: pd.DataFrame
    y: np.ndarray
    probability: np.ndarray
    label: np.ndarray


def logged_params(params: Params) -> dict[str, str]:
    """Every param as the run logs it (MLflow keeps str(value))."""
    return {k: str(v) for k, v in params.flat().items()}


def made_from_files(flat: dict[str, str]) -> Made:
    info = read_json(paths.MODEL_INFO, "train's model info")
    history = read_json(paths.HISTORY, "training history")
    training = Training(_train_params(flat), int(info["best_epoch"]), int(info["epochs_trained"]),
                        int(info["batch_size"]), history)  # fmt: skip
    return Made(info["model_digest"], info["train_key"], info["data_digest"],
                float(info["threshold"]), training)  # fmt: skip


def _train_params(flat: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in flat.items() if k.startswith("train.")}


def _split_rows(label: str) -> tuple[SplitRows, ...]:
    """Each split's rows and positives: its label column alone is read."""
    found = []
    for name in SPLIT_NAMES:
        path = paths.SPLIT_FILES[name]
        y = parquet_file(path, f"{name} table").read(columns=[label]).column(0).to_numpy()
        found.append(SplitRows(name, len(y), int(np.sum(y))))
    return tuple(found)


def _feature_rows(schema: Schema, preprocessor: Preprocessor) -> tuple[FeatureRow, ...]:
    specs = {f["name"]: f for f in preprocessor.features}
    rows = []
    for f in schema.features:
        spec = specs[f.name]
        if f.kind == CATEGORICAL:
            inputs = (f"{len(spec['categories'])} categories, `<missing>` and `<other>`: "
                      "a 0/1 input each")  # fmt: skip
        else:
            gaps = "; gaps: the training median and a 0/1 gap input" if spec["indicator"] else ""
            inputs = f"standardised{gaps}"
        rows.append(FeatureRow(f.name, f.kind, f.values, inputs))
    return tuple(rows)


def _capped(test: pd.DataFrame, preprocessor: Preprocessor, max_categories: str) -> list[str]:
    """Each categorical feature whose test rows hold values the model has no input for."""
    lines = []
    for spec in preprocessor.features:
        if spec["kind"] != CATEGORICAL:
            continue
        kept = set(spec["categories"])
        texts = pd.Series(category_texts(test[spec["name"]]), dtype=object).dropna()
        other = texts[~texts.isin(kept)]
        if other.empty and len(kept) < int(max_categories):
            continue
        share = f"{len(other) / max(len(test), 1):.1%}"
        lines.append(
            f"{_code(spec['name'])}: {len(kept)} categories kept (the most frequent in "
            f"training, data.max_categories = {max_categories}); {len(other)} test rows "
            f"({share}) hold {other.nunique()} other values, which share {_code(OTHER)}."
        )
    return lines


def _setting(flat: dict[str, str], key: str, default: object) -> str:
    return flat.get(key, str(default))


def from_workspace(
    flat: dict[str, str],
    tested: Tested,
    values: dict[str, float],
    made: Made,
    yardsticks: dict[str, dict[str, float]],
    warnings: tuple[str, ...],
) -> Card:
    """The card of a model whose test rows are the workspace's data/split (the same data)."""
    schema = Schema.from_dict(read_json(paths.SCHEMA, "schema"))
    preprocessor = Preprocessor.from_dict(read_json(paths.PREPROCESSOR, "preprocessing"))
    answers = slices.Answers.of(tested.y, tested.probability, tested.label)
    found = slices.slices(tested.test, answers, schema, list(preprocessor.features))
    resamples = int(_setting(flat, "retrain.n_bootstrap", 2000))
    confidence = float(_setting(flat, "retrain.confidence", 0.95))
    seed = int(_setting(flat, "retrain.seed", 42))
    ranges = intervals.bootstrap(tested.y, tested.probability, tested.label, values, resamples,
                                 confidence, seed)  # fmt: skip
    hashes = {n: tables.file_digest(paths.SPLIT_FILES[n])[:16] for n in SPLIT_NAMES}
    data = Data(_setting(flat, "data.source", "?"), made.data_digest, _split_rows(schema.label),
                _feature_rows(schema, preprocessor),
                (str(schema.classes[0]), str(schema.classes[1])), hashes)  # fmt: skip
    evaluation = Evaluation(len(tested.y), values, dict(ranges), confidence, resamples,
                            yardsticks, made.threshold, _setting(flat, "evaluate.threshold", "?"),
                            warnings)  # fmt: skip
    capped = _capped(tested.test, preprocessor, _setting(flat, "data.max_categories", "?"))
    return Card(made.model_digest, made.train_key, data, made.training, evaluation, found, "",
                tuple(capped), data.source == "synthetic")  # fmt: skip


# --- inputs: from a run (`epochline card TARGET`)


def made_from_run(client: MlflowClient, run: Run) -> Made:
    m, tags, run_id = run.data.metrics, run.data.tags, run.info.run_id
    per_key = {k: {h.step: h.value for h in client.get_metric_history(run_id, k)}
               for k in HISTORY_KEYS}  # fmt: skip
    epochs = sorted(set().union(*per_key.values()))
    history = [{"epoch": e, **{k: per_key[k][e] for k in HISTORY_KEYS if e in per_key[k]}}
               for e in epochs]  # fmt: skip
    training = Training(_train_params(run.data.params), int(m.get("best_epoch", 0)),
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


def _tested(run: Run) -> tuple[Tested | None, str]:
    """The workspace's test rows with the run's model's answers, or why not."""
    from epochline.serving.scoring import LoggedModel  # MLflow's model loading: only here

    tags = run.data.tags
    if not all(p.exists() for p in paths.SPLIT_FILES.values()):
        return None, "the workspace has no data/split tables (dvc pull, or dvc repro)"
    here = tables.digest(paths.SPLIT_FILES)
    theirs = tags.get(TAG_DATA_DIGEST, "?")
    if theirs != here:
        return None, f"the run's data (digest `{theirs}`) is not the workspace's (`{here}`)"
    test = read_parquet(paths.TEST, "test table")
    label = run.data.params.get("data.label_column", "label")
    try:
        answers = LoggedModel(tags[TAG_MODEL_URI]).score(test)
    except (MlflowException, OSError, ValueError, KeyError) as exc:
        return None, f"its model could not score the test rows ({first_line(exc)})"
    y = test[label].to_numpy()
    prob, pred = answers["probability"].to_numpy(), answers["label"].to_numpy()
    return Tested(test, y, prob, pred), ""


def _dataset_rows(run: Run) -> tuple[SplitRows, ...]:
    found = {}
    for logged in run.inputs.dataset_inputs if run.inputs else []:
        profile = json.loads(logged.dataset.profile or "{}")
        name = logged.dataset.name
        found[name] = SplitRows(name, int(profile.get("num_rows", 0)), None)
    return tuple(found[n] for n in SPLIT_NAMES if n in found)


def _without_rows(run: Run, made: Made, yardsticks: dict, warnings: tuple, why: str) -> Card:
    flat, m = run.data.params, run.data.metrics
    values = {k: m[f"test_{k}"] for k in metrics.NAMES if f"test_{k}" in m}
    splits = _dataset_rows(run)
    rows = next((s.rows for s in splits if s.name == "test"), 0)
    data = Data(_setting(flat, "data.source", "?"), made.data_digest, splits, (), None, {})
    evaluation = Evaluation(rows, values, {}, 0.95, 0, yardsticks, made.threshold,
                            _setting(flat, "evaluate.threshold", "?"), warnings)  # fmt: skip
    return Card(made.model_digest, made.train_key, data, made.training, evaluation, None, why,
                (), data.source == "synthetic")  # fmt: skip


def run_card(client: MlflowClient, run: Run, version: ModelVersion | None) -> Card:
    made = made_from_run(client, run)
    tags = run.data.tags
    yardsticks = yardsticks_of_run(run.data.metrics)
    warnings = tuple(Verdict(tags.get(TAG_NEVER_PREDICTS), tags.get(TAG_BELOW_BASELINE)).lines())
    tested, why = _tested(run)
    if tested is None:
        card = _without_rows(run, made, yardsticks, warnings, why)
    else:  # computed as evaluate computes them, from the same rows and answers
        values = metrics.classification_metrics(tested.y, tested.probability, tested.label)
        card = from_workspace(dict(run.data.params), tested, values, made, yardsticks, warnings)
    return replace(card, run=lineage(client, run, version))


def _drift(client: MlflowClient, run_id: str) -> tuple[str, ...]:
    """What the run's retrain saw (its retrain/report.json), one line per drifted feature."""

    with tempfile.TemporaryDirectory(prefix="epochline-card-") as tmp:
        try:
            local = client.download_artifacts(run_id, "retrain/report.json", tmp)
        except (MlflowException, OSError):
            return ()
        drift = json.loads(Path(local).read_text()).get("drift") or {}
    lines = [f"{_code(f['feature'])}: PSI {f['psi']:.4f}, {f['test']} statistic "
             f"{f['statistic']:.4f} (p {f['p_value']:.4f})"
             for f in drift.get("features", []) if f.get("drifted")]  # fmt: skip
    label = drift.get("label") or {}
    if label.get("new_positive_rate") is not None and label.get("reference_positive_rate"):
        lines.append(f"positive rate {label['reference_positive_rate']:.4f} in training, "
                     f"{label['new_positive_rate']:.4f} in the new rows")  # fmt: skip
    if not lines and drift.get("new_rows"):
        lines.append(f"{drift['new_rows']} new rows, no feature drifted")
    return tuple(lines)


def lineage(
    client: MlflowClient, run: Run, version: ModelVersion | None, also: tuple[str, ...] = ()
) -> RunLineage:
    """The run's part of the card; `also`: artifacts about to be logged."""
    tags, run_id = run.data.tags, run.info.run_id
    listed = {a.path for a in client.list_artifacts(run_id)} | set(also)
    drift = _drift(client, run_id) if version is not None else ()
    return RunLineage(run_id, run.info.run_name or "", tags.get(TAG_GIT_COMMIT, "unknown"),
                      tags.get(TAG_GIT_DIRTY, "unknown"), tags.get(TAG_MODEL_URI, "none"),
                      tuple(sorted(listed)), version, drift)  # fmt: skip


# --- `epochline card`


_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
FORMS = "a run id, runs:/ID, models:/NAME/VERSION, models:/NAME@ALIAS or @ALIAS"


def resolve(
    client: MlflowClient, target: str | None, params: Params, experiment_id: str
) -> tuple[Run, ModelVersion | None]:
    """The run (and registered version) a target names; None: the pipeline's model."""
    if target is None:
        return client.get_run(store.pipeline_model(experiment_id).run_id), None
    if target.startswith("@"):
        target = f"models:/{params.tracking.registered_model_name}{target}"
    try:
        if target.startswith("models:/"):
            name, _, which = target.removeprefix("models:/").partition("/")
            name, at, alias = name.partition("@")
            version = (client.get_model_version_by_alias(name, alias) if at
                       else client.get_model_version(name, which))  # fmt: skip
            return client.get_run(str(version.run_id)), version
        run_id = target.removeprefix("runs:/").split("/")[0]
        if not _RUN_ID.match(run_id):
            raise UserError(f"card: {target!r} is not {FORMS}")
        return client.get_run(run_id), None
    except MlflowException as exc:
        where = store.safe_uri(store.tracking_uri())
        raise UserError(f"card: {target} not found in {where}: {first_line(exc)}") from None


def card_command(target: str | None, output: Path | None) -> str:
    """The card of a run or registered version (default: the pipeline's model), with the
    run's lineage; written to `output` too when given."""
    params = load_params()
    experiment_id = store.connect(params.tracking)
    client = store.client()
    run, version = resolve(client, target, params, experiment_id)
    text = render(run_card(client, run, version))
    if output is not None:
        write_with(output, lambda tmp: tmp.write_text(text))
    return text.removesuffix("\n")  # echo adds it back
