"""Drift of new rows against the training reference: per feature, and of the label.

Numbers: PSI over the reference's quantile bins and the two-sample KS test, on the values
that are there, plus the change in the share of missing values. Categories: PSI over the
category shares (missing counts as a category) and a chi-square test of the counts, plus
the categories the reference never had.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from epochline.serving import MISSING, category_texts

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


def _numeric(name: str, reference: pd.Series, new: pd.Series) -> dict[str, Any]:
    ref, cur = reference.to_numpy(float), new.to_numpy(float)
    ref, cur = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    ks = stats.ks_2samp(ref, cur) if len(ref) and len(cur) else None
    return {
        "feature": name, "kind": "numeric", "psi": round(psi(ref, cur), 6), "test": "ks",
        "statistic": round(float(ks.statistic), 6) if ks else 0.0,
        "p_value": float(ks.pvalue) if ks else 1.0, "new_categories": [],
    }  # fmt: skip


def _categorical(name: str, reference: pd.Series, new: pd.Series) -> dict[str, Any]:
    ref = pd.Series(category_texts(reference), dtype=object).fillna(MISSING).value_counts()
    cur = pd.Series(category_texts(new), dtype=object).fillna(MISSING).value_counts()
    categories = sorted(set(ref.index) | set(cur.index))
    counts = np.array([[ref.get(c, 0) for c in categories], [cur.get(c, 0) for c in categories]])
    if len(categories) > 1 and counts.sum(axis=1).all():
        chi2 = stats.chi2_contingency(counts)
        statistic, p_value = float(chi2.statistic), float(chi2.pvalue)
    else:
        statistic, p_value = 0.0, 1.0
    return {
        "feature": name, "kind": "categorical", "psi": round(_psi_of_counts(*counts), 6),
        "test": "chi2", "statistic": round(statistic, 6), "p_value": p_value,
        "new_categories": [c for c in categories if c not in ref.index],
    }  # fmt: skip


def feature_drift(
    reference: pd.DataFrame,
    new: pd.DataFrame,
    features: list[str],
    categorical: Collection[str] = (),
) -> list[dict[str, Any]]:
    rows = []
    for name in features:
        measure = _categorical if name in categorical else _numeric
        row = measure(name, reference[name], new[name])
        row["missing_reference"] = round(float(reference[name].isna().mean()), 6)
        row["missing_new"] = round(float(new[name].isna().mean()), 6)
        missing_moved = abs(row["missing_new"] - row["missing_reference"]) > MISSING_WARN
        row["drifted"] = bool(row["psi"] > PSI_WARN or missing_moved)
        rows.append(row)
    return rows


def label_shift(
    reference: np.ndarray, new: np.ndarray, batch_of_row: np.ndarray, classes: tuple[Any, Any]
) -> dict[str, Any]:
    """The positive rate of new rows against the reference, and each batch's own: a batch
    of one class is legitimate data (a day without fraud) but must never pass unremarked."""
    batches = []
    for name in pd.unique(batch_of_row):
        labels = new[batch_of_row == name]
        one_class = classes[int(labels[0])] if len(np.unique(labels)) == 1 else None
        batches.append({"batch": str(name), "rows": len(labels),
                        "positive_rate": round(float(labels.mean()), 6),
                        "one_class": one_class})  # fmt: skip
    return {
        "reference_positive_rate": round(float(reference.mean()), 6) if len(reference) else None,
        "new_positive_rate": round(float(new.mean()), 6) if len(new) else None,
        "batches": batches,
    }
