"""Drift of new rows against the training reference: per feature, and of the label.

Numbers: PSI over the reference's quantile bins and the two-sample KS test, on the values
that are there, plus the change in the share of missing values. Categories: PSI over the
category shares (missing counts as a category) and a chi-square test of the counts, plus
the categories the reference never had.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np
import pandas as pd
from scipy import stats

from epochline.data.schema import CATEGORICAL, Schema
from epochline.serving.model_code import MISSING, category_texts

PSI_BINS = 10
PSI_WARN = 0.2  # the usual rule of thumb: < 0.1 stable, 0.1 to 0.2 moderate, > 0.2 shifted
MISSING_WARN = 0.1  # a change of the missing share by more than 10 points is drift too
_EPS = 1e-4


def _psi_of_counts(ref: np.ndarray, cur: np.ndarray) -> float:
    p = np.clip(ref / max(ref.sum(), 1), _EPS, None)
    q = np.clip(cur / max(cur.sum(), 1), _EPS, None)
    return float(np.sum((q - p) * np.log(q / p)))


def psi(reference: np.ndarray, new: np.ndarray, bins: int = PSI_BINS) -> float:
    """Population stability index over the reference's quantile bins."""
    values = np.unique(reference)
    if len(values) < 2 or len(new) == 0:
        return 0.0
    if len(values) <= bins:
        inner = values[1:]  # few distinct values: one bin each, or quantiles would merge them
    else:
        inner = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1))[1:-1])
    # Open-ended outer bins, so new rows beyond the reference's range still count.
    ref = np.bincount(np.searchsorted(inner, reference, "right"), minlength=len(inner) + 1)
    cur = np.bincount(np.searchsorted(inner, new, "right"), minlength=len(inner) + 1)
    return _psi_of_counts(ref, cur)


class FeatureDrift(TypedDict):
    """One feature's drift; `drifted` is the one verdict (PSI_WARN, MISSING_WARN) reports show."""

    feature: str
    kind: str  # "numeric" or "categorical"
    psi: float
    test: str  # "ks" or "chi2"
    statistic: float
    p_value: float
    new_categories: list[str]
    missing_reference: float
    missing_new: float
    drifted: bool


class BatchLabels(TypedDict):
    batch: str
    rows: int
    positive_rate: float
    one_class: Any  # the one class a batch holds, as the data spells it; None: both


class LabelShift(TypedDict):
    reference_positive_rate: float | None
    new_positive_rate: float | None
    batches: list[BatchLabels]


@dataclass(frozen=True)
class BatchDrift:
    """The rows of batches no earlier retrain saw, against the training rows of the rest."""

    batches: list[str]  # every incoming batch file in the raw table
    new_batches: list[str]
    new_rows: int
    reference_rows: int | None  # None: no new rows, so nothing was measured
    features: list[FeatureDrift]
    label: LabelShift | None

    @classmethod
    def nothing_new(cls, batches: list[str]) -> BatchDrift:
        return cls(batches, [], 0, None, [], None)

    @property
    def drifted(self) -> list[str]:
        """The features that drifted, by feature_drift's verdict."""
        return [f["feature"] for f in self.features if f["drifted"]]

    def as_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "batches": self.batches, "new_batches": self.new_batches, "new_rows": self.new_rows,
        }  # fmt: skip
        if self.reference_rows is not None:
            found["reference_rows"] = self.reference_rows
        return found | {"features": self.features, "label": self.label}


def batch_drift(
    batches: list[str],
    new_batches: list[str],
    reference: pd.DataFrame,
    new: pd.DataFrame,
    new_origin: np.ndarray,
    schema: Schema,
) -> BatchDrift:
    """Every feature's drift and the label's shift of `new` rows (from the batch files
    `new_origin` names) against the `reference` rows."""
    categorical = [f.name for f in schema.features if f.kind == CATEGORICAL]
    return BatchDrift(
        batches, new_batches, len(new), len(reference),
        feature_drift(reference, new, schema.feature_names, categorical),
        label_shift(reference[schema.label].to_numpy(), new[schema.label].to_numpy(),
                    new_origin, schema.classes),
    )  # fmt: skip


# (psi, test, statistic, p value, categories the reference never had)
_Measured = tuple[float, str, float, float, list[str]]


def _numeric(reference: pd.Series, new: pd.Series) -> tuple[str, _Measured]:
    ref, cur = reference.to_numpy(float), new.to_numpy(float)
    ref, cur = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    ks = stats.ks_2samp(ref, cur) if len(ref) and len(cur) else None
    statistic, p_value = (round(float(ks.statistic), 6), float(ks.pvalue)) if ks else (0.0, 1.0)
    return "numeric", (round(psi(ref, cur), 6), "ks", statistic, p_value, [])


def _categorical(reference: pd.Series, new: pd.Series) -> tuple[str, _Measured]:
    ref = pd.Series(category_texts(reference), dtype=object).fillna(MISSING).value_counts()
    cur = pd.Series(category_texts(new), dtype=object).fillna(MISSING).value_counts()
    categories = sorted(set(ref.index) | set(cur.index))
    counts = np.array([[ref.get(c, 0) for c in categories], [cur.get(c, 0) for c in categories]])
    if len(categories) > 1 and counts.sum(axis=1).all():
        chi2 = stats.chi2_contingency(counts)
        statistic, p_value = float(chi2.statistic), float(chi2.pvalue)
    else:
        statistic, p_value = 0.0, 1.0
    unseen = [c for c in categories if c not in ref.index]
    return "categorical", (round(_psi_of_counts(*counts), 6), "chi2", round(statistic, 6),
                           p_value, unseen)  # fmt: skip


def feature_drift(
    reference: pd.DataFrame,
    new: pd.DataFrame,
    features: list[str],
    categorical: Collection[str] = (),
) -> list[FeatureDrift]:
    rows = []
    for name in features:
        measure = _categorical if name in categorical else _numeric
        kind, (psi_, test, statistic, p_value, unseen) = measure(reference[name], new[name])
        missing = (round(float(reference[name].isna().mean()), 6),
                   round(float(new[name].isna().mean()), 6))  # fmt: skip
        missing_moved = abs(missing[1] - missing[0]) > MISSING_WARN
        rows.append(FeatureDrift(
            feature=name, kind=kind, psi=psi_, test=test, statistic=statistic, p_value=p_value,
            new_categories=unseen, missing_reference=missing[0], missing_new=missing[1],
            drifted=bool(psi_ > PSI_WARN or missing_moved),
        ))  # fmt: skip
    return rows


def label_shift(
    reference: np.ndarray, new: np.ndarray, batch_of_row: np.ndarray, classes: tuple[Any, Any]
) -> LabelShift:
    """The positive rate of new rows against the reference, and each batch's own: a batch
    of one class is legitimate data (a day without fraud) but must never pass unremarked."""
    batches = []
    for name in pd.unique(batch_of_row):
        labels = new[batch_of_row == name]
        one_class = classes[int(labels[0])] if len(np.unique(labels)) == 1 else None
        batches.append(BatchLabels(batch=str(name), rows=len(labels),
                                   positive_rate=round(float(labels.mean()), 6),
                                   one_class=one_class))  # fmt: skip
    return LabelShift(
        reference_positive_rate=round(float(reference.mean()), 6) if len(reference) else None,
        new_positive_rate=round(float(new.mean()), 6) if len(new) else None,
        batches=batches,
    )
