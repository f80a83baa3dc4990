"""`epochline reproduce RUN_ID|MODEL_URI`: rebuild a run's model from what it recorded and
say whether the bits are the same.

The run's commit is checked out in a temporary git worktree; params.yaml and dvc.lock are
the run's own (its `provenance/` artifacts); load's outputs (the data) come from the DVC
cache or remote by the hashes in that dvc.lock; normalize → evaluate run again there,
logging to the worktree's own throwaway store. Nothing in the user's workspace or store
changes (the DVC cache may gain objects fetched from the remote, as a `dvc pull` would).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import torch
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from epochline.core import paths
from epochline.core.errors import UserError, first_line
from epochline.core.params import load_params
from epochline.tools import PUSH_HINT, ToolFailed, dvc_remote, run_tool
from epochline.tracking import provenance
from epochline.tracking import store as tracking
from epochline.tracking.tags import (
    TAG_CPU_CAPABILITY,
    TAG_DEVICE,
    TAG_EXP_REF,
    TAG_GIT_COMMIT,
    TAG_GIT_DIRTY,
    TAG_MODEL_DIGEST,
    TAG_MODEL_URI,
)
from epochline.training import model

log = logging.getLogger(__name__)

IDENTICAL, DIFFERENT = 0, 1
EQUIVALENT = IDENTICAL  # also a success: the same model up to the device's rounding
# Where the bits cannot match (another GPU, a GPU against a CPU, fast numerics on another
# CPU), the largest absolute difference a metric may show, at any epoch, to be EQUIVALENT.
TOLERANCE = 0.01
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
# Metrics that retrain adds to a run after the pipeline: not the pipeline's to rebuild.
_ADDED_LATER = ("drift_",)


class CannotRebuild(UserError):
    """The run lacks what a rebuild needs: a dirty tree, data gone, commit gone (exit 2)."""


@dataclass(frozen=True)
class Verdict:
    code: int  # IDENTICAL or DIFFERENT
    text: str


def _checked(target: str) -> str:
    if not target.startswith("models:/") and not _RUN_ID.match(
        target.removeprefix("runs:/").split("/")[0]
    ):
        raise UserError(
            f"reproduce: {target!r} is not a run id (32 hex digits), runs:/ID, "
            "models:/NAME/VERSION or models:/NAME@ALIAS"
        )
    return target


def _run_of(client: MlflowClient, target: str) -> Run:
    """The run a run id, `runs:/ID/…` or `models:/NAME/VERSION|@ALIAS` names."""
    try:
        if target.startswith("models:/"):
            name, _, which = target.removeprefix("models:/").partition("/")
            name, at, alias = name.partition("@")
            version = (
                client.get_model_version_by_alias(name, alias)
                if at
                else client.get_model_version(name, which)
            )
            return client.get_run(str(version.run_id))
        return client.get_run(target.removeprefix("runs:/").split("/")[0])
    except MlflowException as exc:
        raise UserError(
            f"reproduce: {target} not found in {tracking.safe_uri(tracking.tracking_uri())}: "
            f"{first_line(exc)}"
        ) from None


def _git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)


def _recorded(client: MlflowClient, run: Run, scratch: Path) -> tuple[str, str]:
    """The run's params.yaml and dvc.lock, or why the run cannot be rebuilt."""
    tags, run_id = run.data.tags, run.info.run_id
    if tags.get(TAG_GIT_DIRTY) == "true":
        raise CannotRebuild(
            f"reproduce: run {run_id} cannot be rebuilt: dirty tree at the time (code differed "
            f"from commit {tags.get(TAG_GIT_COMMIT, '?')[:12]}); the changes are in its "
            f"artifact {provenance.ARTIFACT_DIR}/{provenance.DIFF_FILE}"
        )
    texts = []
    for name in (provenance.PARAMS_FILE, provenance.LOCK_FILE):
        try:
            local = client.download_artifacts(
                run_id, f"{provenance.ARTIFACT_DIR}/{name}", str(scratch)
            )
        except (MlflowException, OSError):
            raise CannotRebuild(
                f"reproduce: run {run_id} cannot be rebuilt: it holds no "
                f"{provenance.ARTIFACT_DIR}/{name} (logged before runs recorded it)"
            ) from None
        texts.append(Path(local).read_text())
    params_text, lock_text = texts
    ref = tags.get(TAG_EXP_REF, "")
    if ref:
        kept = _git("show", f"{ref}:params.yaml")
        if kept.returncode == 0 and kept.stdout != params_text:
            log.warning(
                "%s's params.yaml differs from the run's own record; the run's record wins", ref
            )
    return params_text, lock_text


@contextmanager
def _worktree(commit: str, keep: Path | None) -> Iterator[Path]:
    if _git("cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        raise CannotRebuild(
            f"reproduce: commit {commit[:12]} cannot be found: it is gone from this repository "
            "(rewritten, or never fetched here)"
        )
    if keep is not None and keep.exists() and any(keep.iterdir()):
        raise UserError(f"reproduce: --keep {keep}: not empty; give a new or empty folder")
    where = keep.resolve() if keep else Path(tempfile.mkdtemp(prefix="epochline-reproduce-"))
    added = _git("worktree", "add", "--detach", str(where), commit)
    if added.returncode != 0:
        raise UserError(f"reproduce: git worktree add {where}: {added.stderr.strip()}")
    try:
        yield where
    finally:
        if keep is None:
            _git("worktree", "remove", "--force", str(where))
            shutil.rmtree(where, ignore_errors=True)
            _git("worktree", "prune")


@contextmanager
def _inside(where: Path) -> Iterator[None]:
    """Work in `where`, its own MLflow store and DVC state: none of the user's settings
    that point elsewhere (a tracking server, a DVC experiment) apply to the rebuild."""
    before_cwd, before_env = Path.cwd(), dict(os.environ)
    for key in [k for k in os.environ if k.startswith("DVC_")] + ["MLFLOW_TRACKING_URI"]:
        os.environ.pop(key, None)
    os.chdir(where)
    try:
        yield
    finally:
        os.chdir(before_cwd)
        os.environ.clear()
        os.environ.update(before_env)


def _dvc(*args: str, what: str) -> None:
    # Quiet: DVC's lines (`A data/raw.parquet`, each stage's) are the rebuild's, not the
    # verdict's; a failure still says DVC's error line.
    run_tool([sys.executable, "-m", "dvc", *args], what, drop=(PUSH_HINT,), quiet=True)


def _restore_data(root: Path) -> None:
    """load's outputs as the run had them, from the user's DVC cache or remote."""
    cache = subprocess.run(
        [sys.executable, "-m", "dvc", "cache", "dir"], cwd=root, capture_output=True, text=True
    ).stdout.strip()
    local = root / ".dvc" / "config.local"
    if local.is_file():  # remote credentials and local-only settings
        shutil.copy(local, Path(".dvc/config.local"))
    if cache:
        _dvc("cache", "dir", "--local", cache, what="dvc cache dir")
    try:
        if dvc_remote() is not None:
            _dvc("fetch", "load", what="dvc fetch")
        _dvc("checkout", "load", what="dvc checkout")
    except ToolFailed as exc:
        raise CannotRebuild(
            f"reproduce: the run's data is no longer in any cache or remote ({exc})"
        ) from None


def _logged_checkpoint(store: str, model_uri: str, scratch: Path) -> dict[str, Any] | None:
    """The checkpoint logged with the run (not what its tag says); None if it has none."""
    mlflow.set_tracking_uri(store)  # a models:/ URI is resolved in the global store
    folder = Path(mlflow.artifacts.download_artifacts(model_uri, dst_path=str(scratch)))
    found = sorted(folder.glob("artifacts/*.pt"))
    return torch.load(found[0], weights_only=True) if found else None


def _identity(checkpoint: dict[str, Any] | None) -> str:
    return "no checkpoint" if checkpoint is None else model.identity(checkpoint)


def _portable(run: Run) -> bool:
    """Trained on a CPU with portable numerics: any CPU rebuilds the same bits. (A run from
    before epochline recorded its numerics used the CPU's own kernels.)"""
    device = run.data.tags.get(TAG_DEVICE)
    return run.data.params.get("train.numerics") == "portable" and device == "cpu"


def _hardware(run: Run) -> str:
    tags = run.data.tags
    device = tags.get(TAG_DEVICE, "an unrecorded device")
    if device != "cpu":
        return device
    numerics = run.data.params.get("train.numerics", "the CPU's own")
    return f"cpu, {numerics} numerics ({tags.get(TAG_CPU_CAPABILITY, '?')} kernels)"


@dataclass(frozen=True)
class Gaps:
    """How far a rebuild whose bits differ is from the run."""

    metrics: dict[str, float]  # each metric's largest absolute difference over its steps
    weights: float | None  # the largest absolute difference of any weight; None: no match
    same_steps: bool  # every metric logged at the same steps in both

    def within(self, tolerance: float) -> bool:
        values = self.metrics.values()
        return self.same_steps and self.weights is not None and all(g <= tolerance for g in values)

    def describe(self) -> str:
        worst = sorted(self.metrics.items(), key=lambda kv: (-kv[1], kv[0]))
        listed = ", ".join(f"{key} {gap:.2g}" for key, gap in worst)
        weights = "not comparable" if self.weights is None else f"{self.weights:.2g}"
        return f"largest differences: {listed}; weights {weights}"


def _weight_gap(logged: dict[str, Any] | None, rebuilt: dict[str, Any]) -> float | None:
    """The largest |difference| between two checkpoints' weights; None if their names or
    shapes differ."""
    if logged is None:
        return None
    a, b = logged["state_dict"], rebuilt["state_dict"]
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        return None
    gaps = [(a[k].double() - b[k].double()).abs().max().item() for k in a if a[k].numel()]
    return max(gaps, default=0.0)


def _history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def _differences(
    run: Run, store: str, logged: str, rebuilt: Run, rebuilt_store: str
) -> tuple[list[str], str, dict[str, float], bool]:
    """Each difference between the run (its logged checkpoint is model `logged`) and its
    rebuild: the model, then every metric's history (per epoch; the test metrics are step
    0). What was compared, each metric's largest difference, and whether every metric was
    logged at the same steps in both."""
    client, rebuilt_client = MlflowClient(store), MlflowClient(rebuilt_store)
    again = rebuilt.data.tags[TAG_MODEL_DIGEST]  # train just logged that checkpoint
    found = [] if logged == again else [f"model: {logged} in the run, {again} rebuilt"]
    keys = sorted(
        {k for k in run.data.metrics if not k.startswith(_ADDED_LATER)} | set(rebuilt.data.metrics)
    )
    epochs, gaps, same_steps = 0, {}, True
    for key in keys:
        then = _history(client, run.info.run_id, key)
        now = _history(rebuilt_client, rebuilt.info.run_id, key)
        epochs = max(epochs, len(now))
        if [s for s, _ in then] == [s for s, _ in now]:
            gaps[key] = max(
                (abs(a - b) for (_, a), (_, b) in zip(then, now, strict=True)), default=0.0
            )
        else:
            same_steps = False
        if then == now:
            continue
        at = next((i for i, (a, b) in enumerate(zip(then, now, strict=False)) if a != b), None)
        if at is None:
            found.append(f"metric {key}: {len(then)} values in the run, {len(now)} rebuilt")
        else:
            (step, a), (_, b) = then[at], now[at]
            found.append(f"metric {key} at step {step}: {a!r} in the run, {b!r} rebuilt")
    return found, f"model {again}, {len(keys)} metrics over {epochs} epochs", gaps, same_steps


def _verdict(name: str, found: list[str], checked: str, environment: list[str]) -> Verdict:
    """IDENTICAL or DIFFERENT by the bits; where the packages differ, that is said too."""
    note = f"; environment differs: {', '.join(environment)}" if environment else ""
    if not found:
        return Verdict(IDENTICAL, f"reproduce: IDENTICAL: {name}: {checked}{note}")
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return Verdict(DIFFERENT, f"reproduce: DIFFERENT: {name}: {found[0]}{more}{note}")


def _across_devices(name: str, gaps: Gaps, why: str, tolerance: float, bits: Verdict) -> Verdict:
    """Bits that cannot match (`why`): EQUIVALENT when every metric is within `tolerance`."""
    if not gaps.within(tolerance):
        return Verdict(DIFFERENT, f"{bits.text}\n  {why}; {gaps.describe()}")
    return Verdict(
        EQUIVALENT,
        f"reproduce: EQUIVALENT: {name}: not the same bits ({why}), every metric within "
        f"{tolerance:g} at every step\n  {gaps.describe()}",
    )


def reproduce(target: str, keep: Path | None = None, tolerance: float | None = None) -> Verdict:
    _checked(target)
    tolerance = TOLERANCE if tolerance is None else tolerance
    params = load_params()
    root = tracking.project_root()
    tracking.connect(params.tracking)
    store = tracking.tracking_uri()
    client = MlflowClient(store)
    run = _run_of(client, target)
    tags = run.data.tags
    if not tags.get(TAG_MODEL_URI):
        raise CannotRebuild(f"reproduce: run {run.info.run_id} holds no model: it never finished")
    commit = tags.get(TAG_GIT_COMMIT, "")
    name = f"run '{run.info.run_name}' ({run.info.run_id}) from commit {commit[:12]}"
    environment = provenance.version_differences(tags)
    with tempfile.TemporaryDirectory(prefix="epochline-reproduce-") as tmp:
        scratch = Path(tmp)
        params_text, lock_text = _recorded(client, run, scratch)
        checkpoint = _logged_checkpoint(store, tags[TAG_MODEL_URI], scratch / "logged")
        logged = _identity(checkpoint)
        if logged != tags.get(TAG_MODEL_DIGEST):  # no rebuild can make it agree
            change = f"its logged checkpoint is model {logged}, its record says " + tags.get(
                TAG_MODEL_DIGEST, "nothing"
            )
            return _verdict(name, [f"model: changed after the run: {change}"], "", environment)
        with _worktree(commit, keep) as where, _inside(where):
            rebuilt, rebuilt_store = _rebuild(root, name, where, params_text, lock_text)
            rebuilt_checkpoint = torch.load(where / paths.CHECKPOINT, weights_only=True)
        found, checked, metric_gaps, same_steps = _differences(
            run, store, logged, rebuilt, rebuilt_store
        )
    if keep is not None:
        checked += f"; the rebuild is kept in {keep}"
    bits = _verdict(name, found, checked, environment)
    if not found or (_portable(run) and _portable(rebuilt)):
        return bits  # portable numerics on a CPU: the bits must match, on any CPU
    gaps = Gaps(metric_gaps, _weight_gap(checkpoint, rebuilt_checkpoint), same_steps)
    why = f"trained on {_hardware(run)}, rebuilt on {_hardware(rebuilt)}"
    return _across_devices(name, gaps, why, tolerance, bits)


def _rebuild(
    root: Path, name: str, where: Path, params_text: str, lock_text: str
) -> tuple[Run, str]:
    """The run's pipeline again in `where` (the cwd): its run there, and that store."""
    Path("params.yaml").write_text(params_text)
    Path("dvc.lock").write_text(lock_text)
    _restore_data(root)
    log.info("rebuilding %s in %s", name, where)
    # --force: rerun even where DVC's run cache knows the result; --no-commit: leave the
    # user's cache as it is.
    _dvc("repro", "--force", "--no-commit", "--downstream", "normalize", what="rebuild")
    rebuilt = tracking.pipeline_model(tracking.connect(load_params().tracking))
    rebuilt_store = tracking.tracking_uri()
    return MlflowClient(rebuilt_store).get_run(rebuilt.run_id), rebuilt_store
