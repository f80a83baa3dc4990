"""A retrain's decision as one typed record: built once by retrain, rendered by report.py,
written by recording.py (the registry's tags, the run's, drift metrics, report.json)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from epochline.retrain.compare import Comparison, Findings
from epochline.retrain.drift import BatchDrift
from epochline.tracking.tags import KEPT, Tag


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
class SeedJudgement:
    """One seed's model (retrain.seeds > 1) judged by the same rule as the challenger."""

    seed: int
    run_id: str
    value: float  # its retrain.metric on the shared test rows
    delta: float | None  # its gain over the champion; None: no champion to beat
    ci_low: float | None
    ci_high: float | None
    held: bool  # the rule would promote it
    reason: str  # the rule's reason for it

    @classmethod
    def of(cls, seed: int, run_id: str, c: Comparison) -> SeedJudgement:
        return cls(seed, run_id, c.challenger, c.delta, c.ci_low, c.ci_high, c.promoted, c.reason)

    @property
    def figure(self) -> str:
        """Its gain over the champion (`+0.0150`), or its value where there is none."""
        return f"{self.value:.4f}" if self.delta is None else f"{self.delta:+.4f}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def across_seeds(challenger: Comparison, seeds: Sequence[SeedJudgement]) -> Comparison:
    """The challenger's comparison with the decision and reason about every seed (the
    challenger's own among them): promoted only if the rule would promote each seed's
    model, on the same rows against the same champion (with none: each passes the floor
    and nothing refuses it). The numbers stay the challenger's: it is what is registered."""
    what = "deltas" if challenger.champion is not None else challenger.metric
    figures = f"{what} {', '.join(s.figure for s in seeds)}"
    failed = [s for s in seeds if not s.held]
    if not failed:
        reason = f"holds across {len(seeds)} seeds: {figures}; {challenger.reason}"
        return replace(challenger, reason=reason)
    first = failed[0]
    reason = (f"not across the seeds: seed {first.seed} {first.reason}; "
              f"{len(seeds) - len(failed)} of {len(seeds)} seeds held ({figures})")  # fmt: skip
    return replace(challenger, decision=KEPT, reason=reason)


def seeds_tag(seeds: Sequence[SeedJudgement]) -> str:
    """Tag.SEEDS: `42 +0.0150 held; 43 +0.0050 not held` (a value where no champion)."""
    return "; ".join(f"{s.seed} {s.figure} {'held' if s.held else 'not held'}" for s in seeds)


@dataclass(frozen=True)
class Decision:
    finished: str  # when, ISO 8601 to the second
    comparison: Comparison
    drift: BatchDrift
    versions: Versions
    provenance: Provenance
    test_metrics: dict[str, Any]  # the challenger's reports/metrics.json
    verdict: dict[str, Any]  # and its reports/verdict.json: yardsticks, warnings
    # retrain.seeds > 1: each seed judged, the challenger's first; empty: one seed
    seeds: tuple[SeedJudgement, ...] = ()

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
        data: dict[str, Any] = {
            "finished": self.finished, "registered_model": p.registered_model,
            "run_id": p.run_id, "run_name": p.run_name, "runs_link": p.runs_link,
            "test_metrics": self.test_metrics, "verdict": self.verdict,
            "challenger_version": self.versions.challenger,
            "champion_version": self.versions.champion, "champion_after": self.champion_after,
            "comparison": self.comparison.as_dict(), "drift": self.drift.as_json(),
            "batches": self.drift.batches, "data_digest": p.data_digest,
            "git_commit": p.git_commit,
        }  # fmt: skip
        if self.seeds:  # only then: a one-seed record keeps the keys it always had
            data["seeds"] = [s.as_dict() for s in self.seeds]
        return data

    def tags(self) -> dict[Tag, object]:
        """The tags on the challenger's version and (prefixed) its run; DECISION last."""
        c = self.comparison
        return {
            Tag.REASON: c.reason, Tag.METRIC: c.metric, Tag.CHALLENGER_VALUE: c.challenger,
            Tag.CHAMPION_VALUE: c.champion, Tag.CHAMPION_VERSION: self.versions.champion,
            Tag.DELTA: c.delta, Tag.DELTA_CI_LOW: c.ci_low, Tag.DELTA_CI_HIGH: c.ci_high,
            Tag.P_VALUE: c.p_value, Tag.DATA_DIGEST: self.provenance.data_digest,
            Tag.GIT_COMMIT: self.provenance.git_commit, Tag.BATCHES: ",".join(self.drift.batches),
            **({Tag.SEEDS: seeds_tag(self.seeds)} if self.seeds else {}),
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
