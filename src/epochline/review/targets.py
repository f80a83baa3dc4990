"""What `epochline compare` accepts as a model, resolved to the MLflow run that trained it.

A run id (or runs:/ID), a registered version (models:/NAME/VERSION, models:/NAME@ALIAS, or
@ALIAS for this project's registered model), a git revision or branch (its committed
dvc.lock names train's models/model.json, which names the model; the run is found by it),
or a DVC experiment name (its ref is a commit like any other; else the run it tagged).
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass

from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from epochline.core import paths
from epochline.core.errors import UserError, first_line
from epochline.core.params import Params
from epochline.review import seeds
from epochline.tracking import store
from epochline.tracking.tags import TAG_EXP_NAME, TAG_MODEL_URI, TAG_SEEDS

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
FORMS = "a run id, models:/NAME/VERSION, models:/NAME@ALIAS, @ALIAS, a git revision or a DVC "
FORMS += "experiment name"


class TargetNotFound(UserError):
    """A target that names nothing in this repository or store (exit 2)."""


@dataclass(frozen=True)
class Side:
    """One side of a comparison: what the user named, the run, the model to score."""

    target: str
    how: str  # how the target was read: "run", "models:/… v3", "git abc1234", "experiment x"
    run: Run
    model_uri: str
    model_run_id: str  # the run that trained the model: the run, or a seeds parent's child
    version: ModelVersion | None = None  # a registered target's version (its decision record)

    @property
    def seeds(self) -> bool:
        """A parent run of `epochline seeds`: its metrics are a spread over seeds."""
        return TAG_SEEDS in self.run.data.tags


def _git(*args: str) -> str | None:
    done = subprocess.run(["git", *args], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def _by_run_id(client: MlflowClient, run_id: str) -> Run:
    try:
        return client.get_run(run_id)
    except MlflowException as exc:
        raise TargetNotFound(f"run {run_id}: not in this store ({first_line(exc)})") from None


def _by_model(client: MlflowClient, uri: str) -> tuple[Run, ModelVersion]:
    name, _, version = uri.removeprefix("models:/").partition("/")
    name, at, alias = name.partition("@")
    try:
        found = (
            client.get_model_version_by_alias(name, alias)
            if at
            else client.get_model_version(name, version)
        )
    except MlflowException as exc:
        raise TargetNotFound(f"{uri}: no such registered version ({first_line(exc)})") from None
    return _by_run_id(client, str(found.run_id)), found


def _model_json_at(commit: str) -> dict[str, str]:
    """train's models/model.json as the commit's dvc.lock names it (from the DVC cache or
    remote, as `dvc pull` would get it)."""
    import dvc.api  # only here: DVC's import costs a second that run ids never need

    try:
        text = dvc.api.read(str(paths.MODEL_INFO), repo=".", rev=commit)
    except Exception as exc:  # DVC raises its own errors for a missing lock, out or cache
        raise TargetNotFound(
            f"git {commit[:12]}: its {paths.MODEL_INFO} is not available here "
            f"({first_line(exc)}); `dvc pull` it, or run the pipeline at that commit"
        ) from None
    found: dict[str, str] = json.loads(text)
    return found


def _by_commit(target: str, commit: str, experiment_id: str) -> Run:
    info = _model_json_at(commit)
    trained = store.find_training_run(experiment_id, info["train_key"], info["model_digest"])
    if trained is None:
        raise TargetNotFound(
            f"{target} (git {commit[:12]}): no run in {store.safe_uri(store.tracking_uri())} "
            f"holds its model {info['model_digest'][:12]}; run the pipeline at that commit "
            "against this store"
        )
    return store.client().get_run(trained.run_id)


def _experiment_commit(name: str) -> str | None:
    """The commit of the DVC experiment `name` (refs/exps/…/NAME), if there is one."""
    refs = _git("for-each-ref", "--format=%(refname) %(objectname)", "refs/exps") or ""
    for line in refs.splitlines():
        ref, _, commit = line.partition(" ")
        if ref.rsplit("/", 1)[-1] == name:
            return commit
    return None


def _by_experiment_tag(client: MlflowClient, name: str, experiment_id: str) -> Run | None:
    found = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{TAG_EXP_NAME}` = '{name}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return found[0] if found else None


def _run_of(
    client: MlflowClient, target: str, params: Params, experiment_id: str
) -> tuple[Run, str, ModelVersion | None]:
    """The run `target` names, how it was read, and its registered version if it names one."""
    if target.startswith("@"):
        target = f"models:/{params.tracking.registered_model_name}{target}"
    if target.startswith("models:/"):
        run, version = _by_model(client, target)
        return run, f"registered {version.name} v{version.version}", version
    run_id = target.removeprefix("runs:/").split("/")[0]
    if _RUN_ID.match(run_id):
        return _by_run_id(client, run_id), "run", None
    commit = _git("rev-parse", "--verify", "--quiet", f"{target}^{{commit}}")
    how = "git"
    if commit is None and not target.startswith("-"):
        commit, how = _experiment_commit(target), "DVC experiment"
    if commit is not None:
        return _by_commit(target, commit, experiment_id), f"{how} {commit[:7]}", None
    tagged = _by_experiment_tag(client, target, experiment_id)
    if tagged is not None:
        return tagged, "DVC experiment (its run's tag)", None
    raise TargetNotFound(f"{target!r} is none of: {FORMS} known here")


def _seed_model(client: MlflowClient, parent: Run) -> Run:
    """A seeds parent's model to score: its first seed's (the params' own train.seed)."""
    first = parent.data.tags[TAG_SEEDS].split(",")[0]
    for child in seeds.children(client, parent.info.run_id):
        if child.data.params.get("train.seed") == first and TAG_MODEL_URI in child.data.tags:
            return child
    raise TargetNotFound(f"run {parent.info.run_id}: its seed {first} child has no model")


def resolve(client: MlflowClient, target: str, params: Params, experiment_id: str) -> Side:
    run, how, version = _run_of(client, target, params, experiment_id)
    tags = run.data.tags
    if TAG_SEEDS in tags:
        child = _seed_model(client, run)
        model_uri = child.data.tags[TAG_MODEL_URI]
        return Side(target, how, run, model_uri, child.info.run_id, version)
    if TAG_MODEL_URI not in tags:
        raise TargetNotFound(
            f"{target}: run {run.info.run_id} holds no model (it failed before logging one)"
        )
    return Side(target, how, run, tags[TAG_MODEL_URI], run.info.run_id, version)
