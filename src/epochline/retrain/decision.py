"""A retrain's decision as one typed record: built once by retrain, rendered by report.py,
written by recording.py (the registry's tags, the run's, drift metrics, report.json)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from epochline.retrain.compare import Comparison, Findings
from epochline.retrain.drift import BatchDrift
from epochline.tracking.tags import Tag


@dataclass(frozen=True)
class Versions:
    """The registered model's versions that the decision is about."""

    challenger: str
    champion: str | None  # the champion it was judged against, before the decision


@dataclass(frozen=True)
class Provenance:
    """Where the challenger comes from, and where a person looks."""

    registered_model: str
    run_id: str
    run_name: str
    runs_link: str
    data_digest: str
    git_commit: str


@dataclass(frozen=True)
class Decision:
    finished: str  # when, ISO 8601 to the second
    comparison: Comparison
    drift: BatchDrift
    versions: Versions
    provenance: Provenance
    test_metrics: dict[str, Any]  # the challenger's reports/metrics.json
    verdict: dict[str, Any]  # and its reports/verdict.json: yardsticks, warnings

    @property
    def status(self) -> str:
        return self.comparison.decision

    @property
    def champion_after(self) -> str | None:
        return self.versions.challenger if self.comparison.promoted else self.versions.champion

    @property
    def findings(self) -> Findings:
        """What evaluate found about the challenger: what could refuse it, its warnings."""
        return Findings.of(self.verdict, self.comparison.metric)

    def as_json(self) -> dict[str, Any]:
        """report.json: the keys its readers (people, tests, scripts) know."""
        p = self.provenance
        return {
            "finished": self.finished, "registered_model": p.registered_model,
            "run_id": p.run_id, "run_name": p.run_name, "runs_link": p.runs_link,
            "test_metrics": self.test_metrics, "verdict": self.verdict,
            "challenger_version": self.versions.challenger,
            "champion_version": self.versions.champion, "champion_after": self.champion_after,
            "comparison": self.comparison.as_dict(), "drift": self.drift.as_json(),
            "batches": self.drift.batches, "data_digest": p.data_digest,
            "git_commit": p.git_commit,
        }  # fmt: skip

    def tags(self) -> dict[Tag, object]:
        """The tags on the challenger's version and (prefixed) its run; DECISION last."""
        c = self.comparison
        return {
            Tag.REASON: c.reason, Tag.METRIC: c.metric, Tag.CHALLENGER_VALUE: c.challenger,
            Tag.CHAMPION_VALUE: c.champion, Tag.CHAMPION_VERSION: self.versions.champion,
            Tag.DELTA: c.delta, Tag.DELTA_CI_LOW: c.ci_low, Tag.DELTA_CI_HIGH: c.ci_high,
            Tag.P_VALUE: c.p_value, Tag.DATA_DIGEST: self.provenance.data_digest,
            Tag.GIT_COMMIT: self.provenance.git_commit, Tag.BATCHES: ",".join(self.drift.batches),
            Tag.DECISION: c.decision,  # last: a version without it is judged again
        }  # fmt: skip

    def drift_metrics(self) -> list[tuple[str, float]]:
        """drift_psi_<feature>, drift_ks_ or drift_chi2_<feature>, drift_missing_<feature>
        (the new rows' missing share), drift_positive_rate (of the new rows)."""
        found = []
        for f in self.drift.features:
            found += [(f"drift_psi_{f['feature']}", f["psi"]),
                      (f"drift_{f['test']}_{f['feature']}", f["statistic"]),
                      (f"drift_missing_{f['feature']}", f["missing_new"])]  # fmt: skip
        shift = self.drift.label
        if shift is not None and shift["new_positive_rate"] is not None:
            found.append(("drift_positive_rate", shift["new_positive_rate"]))
        return [(_metric_key(name), value) for name, value in found]


def _metric_key(name: str) -> str:
    return re.sub(r"[^\w\-. /]", "_", name)  # what MLflow accepts in a metric name
