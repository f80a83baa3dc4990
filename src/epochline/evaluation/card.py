"""The model card: what a model was trained and tested on, how good it is, where it is weak.

One renderer (`render`) from plain inputs (`Card`), and the card of the pipeline's model built
from what evaluate already holds (`write_for_pipeline`). evaluate writes it as
reports/model_card.md: the same bytes for the same params, data and code, so nothing of the
run, the store or the machine goes in (no run id, commit, time or URI). The run's copy
(artifact model_card.md) and `epochline card TARGET` (review/card.py) add the run's lineage
at the end, and for a registered version its decision record: the file is their prefix.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from epochline.core import paths
from epochline.core.files import parquet_file, read_json, write_with
from epochline.core.params import Params
from epochline.data import tables
from epochline.data.preprocessing import Preprocessor
from epochline.data.schema import CATEGORICAL, Schema
from epochline.evaluation import intervals, metrics, slices
from epochline.evaluation.baselines import LOGISTIC, MAJORITY
from epochline.evaluation.intervals import Interval
from epochline.evaluation.slices import Slice
from epochline.serving.model_code import OTHER, category_texts
from epochline.tracking.tags import PREFIX, TAG_GIT_COMMIT, TAG_GIT_DIRTY, TAG_MODEL_URI, Tag

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
    metrics: dict[str, float]  # metrics.NAMES; a name absent: not known (shown "-")
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
    notes: tuple[str, ...] = ()  # what else to know of the target (a seeds parent)


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


def code_span(text: object) -> str:
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
        parts.append(f"{shown} **{_f(e.metrics.get(name))}**{within}")
    lr = e.yardsticks.get(LOGISTIC)
    against = (f" The logistic regression fitted on the same rows: accuracy "
               f"{_f(lr.get('accuracy'))}, ROC AUC {_f(lr.get('roc_auc'))}."
               if lr else "")  # fmt: skip
    return [
        "# Model card",
        "",
        f"Model `{card.model_digest}`, a network trained on {code_span(card.data.source)} data "
        f"(digest `{card.data.digest}`): on {e.rows} test rows, {parts[0]}, {parts[1]}.{against}",
    ]


SLICE_HEAD = [
    "| feature | slice | rows | positives | accuracy | vs all rows | ROC AUC | log loss | note |",
    "|---|---|--:|--:|--:|--:|--:|--:|---|",
]


def _slice_line(s: Slice, overall: float | None) -> str:
    note = f"{slices.FEW} (< {slices.FEW_ROWS})" if s.few else ""
    versus = "-" if overall is None else f"{s.accuracy - overall:+.4f}"
    return (f"| {code_span(s.feature)} | {code_span(s.name)} | {s.rows} | {s.positives} | "
            f"{_f(s.accuracy)} | {versus} | {_f(s.roc_auc)} | "
            f"{_f(s.log_loss)} | {note} |")  # fmt: skip


def _slices(card: Card) -> list[str]:
    lines = ["", "## Slices", ""]
    if card.slices is None:
        return [*lines, f"Slices could not be computed: {card.no_slices}."]
    overall = card.evaluation.metrics.get("accuracy")
    bins = slices.bin_count(card.evaluation.rows)
    lines += [
        f"The {min(WORST, len(card.slices))} of {len(card.slices)} slices of the test rows "
        f"with the lowest accuracy (ties: fewer rows first; slices of fewer than {slices.FEW_ROWS} "
        "rows after the others). A slice is a category of a "
        f"categorical feature as the model sees it, or a {'decile' if bins == 10 else 'quartile'}"
        " bin of a numeric one (bins merge at tied values); every slice is under *All slices*.",
        "",
        *SLICE_HEAD,
    ]
    return lines + [_slice_line(s, overall) for s in slices.worst(card.slices, WORST)]


def _data(card: Card) -> list[str]:
    d = card.data
    lines = ["", "## Data", "", f"Source {code_span(d.source)}, digest `{d.digest}`."]
    if d.classes:
        lines[-1] += f" Classes: {code_span(d.classes[0])} (0) and {code_span(d.classes[1])} (1)."
    lines += ["", "| split | rows | positives | positive rate |", "|---|--:|--:|--:|"]
    for s in d.splits:
        rate = "-" if s.positives is None or not s.rows else _f(s.positives / s.rows)
        shown = "-" if s.positives is None else str(s.positives)
        lines.append(f"| {s.name} | {s.rows} | {shown} | {rate} |")
    if not d.features:
        return [*lines, "", "The features' kinds are not known here (see *Slices*)."]
    lines += ["", "| feature | kind | held as | model inputs |", "|---|---|---|---|"]
    lines += [f"| {code_span(f.name)} | {f.kind} | {f.held} | {f.inputs} |" for f in d.features]
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
    lines += [f"| `{k}` | {code_span(v)} |" for k, v in sorted(t.params.items())]
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


def _interval_kind(e: Evaluation) -> str:
    """How the intervals were drawn: intervals.bootstrap resamples all the test rows up to
    MAX_ROWS, and above it MAX_ROWS of them with the spread rescaled (m-out-of-n)."""
    if not e.intervals:
        return "no interval: the test rows are not here"
    if e.rows <= intervals.MAX_ROWS:
        return (f"{e.confidence:.0%} percentile bootstrap interval ({e.resamples} resamples "
                "of the test rows)")  # fmt: skip
    return (f"{e.confidence:.0%} m-out-of-n bootstrap interval ({e.resamples} resamples of "
            f"{intervals.MAX_ROWS} of the test rows, the spread rescaled by "
            f"sqrt({intervals.MAX_ROWS} / {e.rows}))")  # fmt: skip


def _evaluation(card: Card) -> list[str]:
    e = card.evaluation
    names = [y for y in YARDSTICKS if y in e.yardsticks]
    lines = ["", "## Evaluation", "",
             f"On {e.rows} test rows, threshold {e.threshold:.4f} (evaluate.threshold: "
             f"{code_span(e.threshold_rule)}); {_interval_kind(e)}. The yardsticks are fitted on "
             "the same training rows and inputs.", "",
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
    overall = card.evaluation.metrics.get("accuracy")
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
        listed = ", ".join(f"{code_span(s.feature)} {code_span(s.name)} ({s.rows})" for s in few)
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


RUN_HEADING = "## The run"  # where the run's part starts: the file's card ends before it


def run_section(run: RunLineage) -> str:
    """The run's part alone, as render() ends a run's card with it."""
    return "\n".join(_run_part(run)) + "\n"


def _run_part(run: RunLineage) -> list[str]:
    lines = ["", RUN_HEADING, "", *[f"- {note}" for note in run.notes],
             f"- run `{run.run_name}` (`{run.run_id}`)",
             f"- commit `{run.commit}` (uncommitted changes: {run.dirty})",
             f"- model `{run.model_uri}`",
             f"- rebuild: `epochline reproduce {run.run_id}`"]  # fmt: skip
    if run.artifacts:
        lines.append(f"- artifacts: {', '.join(code_span(a) for a in run.artifacts)}")
    if run.version is None:
        return lines
    return lines + _decision(run.version, run.drift)


DECISION_TAGS = (Tag.DECISION, Tag.REASON, Tag.METRIC, Tag.CHALLENGER_VALUE, Tag.CHAMPION_VALUE,
                 Tag.CHAMPION_VERSION, Tag.DELTA, Tag.DELTA_CI_LOW, Tag.DELTA_CI_HIGH,
                 Tag.P_VALUE, Tag.SEEDS, Tag.BATCHES, Tag.REPLACED_VERSION, Tag.ROLLED_BACK,
                 Tag.RESTORED_BY_ROLLBACK, Tag.ROLLBACK_REASON)  # fmt: skip


def _decision(version: ModelVersion, drift: tuple[str, ...]) -> list[str]:
    aliases = ", ".join(sorted(version.aliases or [])) or "none"
    lines = ["", "## Decision record", "",
             f"Registered model {code_span(version.name)} version {version.version} (aliases: "
             f"{aliases})."]  # fmt: skip
    tags = version.tags or {}
    found = [(k, tags[f"{PREFIX}{k}"]) for k in DECISION_TAGS if tags.get(f"{PREFIX}{k}")]
    if not found:
        return [*lines, "", "No retrain has judged it yet."]
    lines += ["", "| record | value |", "|---|---|"]
    lines += [f"| {key} | {code_span(value)} |" for key, value in found]
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


# --- inputs: typed, from the stage (or, for `epochline card`, from a run and the workspace)


@dataclass(frozen=True)
class Settings:
    """What the card reports of the params and how it draws its intervals."""

    source: str  # data.source
    threshold_rule: str  # evaluate.threshold, as the run logs it
    resamples: int  # retrain.n_bootstrap
    confidence: float  # retrain.confidence
    seed: int  # retrain.seed

    @classmethod
    def of(cls, params: Params) -> Settings:
        r = params.retrain
        return cls(params.data.source, str(params.evaluate.threshold), r.n_bootstrap,
                   r.confidence, r.seed)  # fmt: skip


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
    """The test rows (raw), a model's answers on them and what evaluate judged of them."""

    test: pd.DataFrame
    y: np.ndarray
    probability: np.ndarray
    label: np.ndarray
    values: dict[str, float]  # metrics.classification_metrics of the answers
    yardsticks: dict[str, dict[str, float]]  # by yardstick name
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class Fitted:
    """How the test rows were prepared for the model: what its slices and limits describe."""

    schema: Schema
    preprocessor: Preprocessor
    max_categories: int


def train_params(params: Params) -> dict[str, str]:
    """train.*, as the run logs them (MLflow keeps str(value))."""
    return {k: str(v) for k, v in params.flat().items() if k.startswith("train.")}


def made_of(info: dict[str, Any], history: list[dict[str, float]], train: dict[str, str]) -> Made:
    """From train's models/model.json and reports/train_history.json."""
    training = Training(train, int(info["best_epoch"]), int(info["epochs_trained"]),
                        int(info["batch_size"]), history)  # fmt: skip
    return Made(info["model_digest"], info["train_key"], info["data_digest"],
                float(info["threshold"]), training)  # fmt: skip


def _split_rows(label: str, test_y: np.ndarray) -> tuple[SplitRows, ...]:
    """Each split's rows and positives: the test rows are at hand, the others' label column
    alone is read."""
    found = []
    for name in SPLIT_NAMES:
        if name == "test":
            y = test_y
        else:
            table = parquet_file(paths.SPLIT_FILES[name], f"{name} table")
            y = table.read(columns=[label]).column(0).to_numpy()
        found.append(SplitRows(name, len(y), int(np.sum(y))))
    return tuple(found)


def _feature_rows(fitted: Fitted) -> tuple[FeatureRow, ...]:
    specs = {f["name"]: f for f in fitted.preprocessor.features}
    rows = []
    for f in fitted.schema.features:
        spec = specs[f.name]
        if f.kind == CATEGORICAL:
            inputs = (f"{len(spec['categories'])} categories, `<missing>` and `<other>`: "
                      "a 0/1 input each")  # fmt: skip
        else:
            gaps = "; gaps: the training median and a 0/1 gap input" if spec["indicator"] else ""
            inputs = f"standardised{gaps}"
        rows.append(FeatureRow(f.name, f.kind, f.values, inputs))
    return tuple(rows)


def _capped(test: pd.DataFrame, fitted: Fitted) -> list[str]:
    """Each categorical feature whose test rows hold values the model has no input for."""
    lines = []
    for spec in fitted.preprocessor.features:
        if spec["kind"] != CATEGORICAL:
            continue
        kept = set(spec["categories"])
        texts = pd.Series(category_texts(test[spec["name"]]), dtype=object).dropna()
        other = texts[~texts.isin(kept)]
        if other.empty and len(kept) < fitted.max_categories:
            continue
        share = f"{len(other) / max(len(test), 1):.1%}"
        lines.append(
            f"{code_span(spec['name'])}: {len(kept)} categories kept (the most frequent in "
            f"training, data.max_categories = {fitted.max_categories}); {len(other)} test rows "
            f"({share}) hold {other.nunique()} other values, which share {code_span(OTHER)}."
        )
    return lines


def build(made: Made, tested: Tested, settings: Settings, label: str, fitted: Fitted | str) -> Card:
    """The card of a model whose test rows are the workspace's data/split (the same data).
    `fitted`: how the rows were prepared for this model, or why that is not known here (then
    no slices, feature kinds or capped categories: they would describe another model)."""
    ranges = intervals.bootstrap(tested.y, tested.probability, tested.label, tested.values,
                                 settings.resamples, settings.confidence,
                                 settings.seed)  # fmt: skip
    hashes = {n: tables.file_digest(paths.SPLIT_FILES[n])[:16] for n in SPLIT_NAMES}
    known = fitted if isinstance(fitted, Fitted) else None
    classes = (
        None if known is None else (str(known.schema.classes[0]), str(known.schema.classes[1]))
    )
    data = Data(settings.source, made.data_digest, _split_rows(label, tested.y),
                () if known is None else _feature_rows(known), classes, hashes)  # fmt: skip
    evaluation = Evaluation(len(tested.y), tested.values, dict(ranges), settings.confidence,
                            settings.resamples, tested.yardsticks, made.threshold,
                            settings.threshold_rule, tested.warnings)  # fmt: skip
    if known is None:
        return Card(made.model_digest, made.train_key, data, made.training, evaluation, None,
                    str(fitted), (), data.source == "synthetic")  # fmt: skip
    answers = slices.Answers.of(tested.y, tested.probability, tested.label)
    found = slices.slices(tested.test, answers, known.schema, list(known.preprocessor.features))
    return Card(made.model_digest, made.train_key, data, made.training, evaluation, found, "",
                tuple(_capped(tested.test, known)), data.source == "synthetic")  # fmt: skip


def write_for_pipeline(
    params: Params, info: dict[str, Any], fitted: Fitted, tested: Tested
) -> Card:
    """evaluate's card of the pipeline's model, written to reports/model_card.md: nothing of
    the run in it (same inputs, same bytes). `info`: train's models/model.json."""
    history = read_json(paths.HISTORY, "training history")
    made = made_of(info, history, train_params(params))
    card = build(made, tested, Settings.of(params), params.data.label_column, fitted)
    write_with(paths.MODEL_CARD, lambda tmp: tmp.write_text(render(card)))
    return card


def lineage(
    client: MlflowClient,
    run: Run,
    version: ModelVersion | None = None,
    also: tuple[str, ...] = (),
    drift: tuple[str, ...] = (),
) -> RunLineage:
    """The run's part of the card; `also`: artifacts about to be logged."""
    tags, run_id = run.data.tags, run.info.run_id
    listed = {a.path for a in client.list_artifacts(run_id)} | set(also)
    return RunLineage(run_id, run.info.run_name or "", tags.get(TAG_GIT_COMMIT, "unknown"),
                      tags.get(TAG_GIT_DIRTY, "unknown"), tags.get(TAG_MODEL_URI, "none"),
                      tuple(sorted(listed)), version, drift)  # fmt: skip


def for_run(card: Card, client: MlflowClient, run: Run) -> str:
    """The run's copy (artifact ARTIFACT): the file's card with the run's lineage added."""
    return render(replace(card, run=lineage(client, run, also=(ARTIFACT,))))
