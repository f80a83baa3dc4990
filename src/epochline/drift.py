"""Feature drift of new rows against the training reference: PSI and the two-sample KS test."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

PSI_BINS = 10
PSI_WARN = 0.2  # the usual rule of thumb: < 0.1 stable, 0.1 to 0.2 moderate, > 0.2 shifted


def psi(reference: np.ndarray, new: np.ndarray, bins: int = PSI_BINS) -> float:
    """Population stability index over the reference's quantile bins."""
    values = np.unique(reference)
    if len(values) < 2:
        return 0.0
    if len(values) <= bins:
        inner = values[1:]  # few distinct values: one bin each, or quantiles would merge them
    else:
        inner = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1))[1:-1])
    # Open-ended outer bins, so new rows beyond the reference's range still count.
    ref = np.bincount(np.searchsorted(inner, reference, "right"), minlength=len(inner) + 1)
    cur = np.bincount(np.searchsorted(inner, new, "right"), minlength=len(inner) + 1)
    eps = 1e-4
    p = np.clip(ref / ref.sum(), eps, None)
    q = np.clip(cur / cur.sum(), eps, None)
    return float(np.sum((q - p) * np.log(q / p)))


def feature_drift(
    reference: pd.DataFrame, new: pd.DataFrame, features: list[str]
) -> list[dict[str, Any]]:
    rows = []
    for name in features:
        ref, cur = reference[name].to_numpy(float), new[name].to_numpy(float)
        ks = stats.ks_2samp(ref, cur)
        value = psi(ref, cur)
        rows.append(
            {
                "feature": name,
                "psi": round(value, 6),
                "ks_statistic": round(float(ks.statistic), 6),
                "ks_p_value": float(ks.pvalue),
                "drifted": bool(value > PSI_WARN),
            }
        )
    return rows
