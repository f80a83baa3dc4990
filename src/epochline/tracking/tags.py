"""Every tag epochline writes, in one table: on a training run, and on a model version.

store.py and provenance.py write the run tags; registry.py and retrain/recording.py the
version tags (and a retrain's decision again on the version's run, under RUN_TAG_PREFIX).
"""

from collections.abc import Mapping
from enum import StrEnum

PREFIX = "epochline."

# --- on a training run
TAG_GIT_COMMIT = f"{PREFIX}git_commit"
TAG_GIT_DIRTY = f"{PREFIX}git_dirty"
TAG_DATA_DIGEST = f"{PREFIX}data_digest"
TAG_MODEL_DIGEST = f"{PREFIX}model_digest"
TAG_EXP_NAME = f"{PREFIX}dvc_exp_name"
TAG_EXP_REF = f"{PREFIX}dvc_exp_ref"
TAG_BASELINE = f"{PREFIX}dvc_baseline_rev"
TAG_TRAIN_KEY = f"{PREFIX}train_key"  # digest of everything train consumed: params, data, code
TAG_MODEL_URI = f"{PREFIX}model_uri"  # set once the model is logged: the run is complete
TAG_MODEL_CODE = f"{PREFIX}model_code"  # sha256 of serving/model_code.py as logged with it
TAG_CHANGES = f"{PREFIX}params_changed"  # what differs from the baseline's params.yaml
TAG_DATA_CHANGES = f"{PREFIX}data_changed"  # batches the baseline commit lacks: `+2 batches`
TAG_PLATFORM = f"{PREFIX}platform"
VERSION_TAG = PREFIX + "version.{}"  # a package's version: epochline.version.torch
# Whose run it is: a run left RUNNING by a process that is gone gets closed.
TAG_HOST, TAG_PID, TAG_STARTED = f"{PREFIX}host", f"{PREFIX}pid", f"{PREFIX}process_started"
# Where the weights were computed: a GPU's, or a CPU's kernels under train.numerics.
TAG_DEVICE, TAG_CPU_CAPABILITY = f"{PREFIX}device", f"{PREFIX}cpu_capability"
# The decision threshold baked into the model, and how it was chosen (evaluate.threshold).
TAG_THRESHOLD = f"{PREFIX}threshold"
# evaluate's warnings: a class the model never answers on the test rows; the network below
# the logistic regression fitted on the same rows, on retrain.metric.
TAG_NEVER_PREDICTS = f"{PREFIX}never_predicts"
TAG_BELOW_BASELINE = f"{PREFIX}below_baseline"
# `epochline seeds N`: on the parent run, the seeds its children trained with ("42,43,44");
# MLflow's own tag names the parent on each child.
TAG_SEEDS = f"{PREFIX}seeds"
TAG_PARENT_RUN = "mlflow.parentRunId"
TAG_DESCRIPTION = "mlflow.note.content"  # MLflow's own: the run's description in the UI

# --- on a model version (Tag, under PREFIX), and a retrain's decision on the version's run
RUN_TAG_PREFIX = f"{PREFIX}retrain."


class Tag(StrEnum):
    """Every tag epochline keeps on a model version (and, where noted, on its run)."""

    MODEL_DIGEST = "model_digest"  # what the model is (weights, config): finds its version
    # A retrain's decision and its evidence; on the run as well, under RUN_TAG_PREFIX.
    REASON = "reason"
    METRIC = "metric"
    CHALLENGER_VALUE = "challenger_value"
    CHAMPION_VALUE = "champion_value"
    CHAMPION_VERSION = "champion_version"
    DELTA = "delta"
    DELTA_CI_LOW = "delta_ci_low"
    DELTA_CI_HIGH = "delta_ci_high"
    P_VALUE = "p_value"
    DATA_DIGEST = "data_digest"
    GIT_COMMIT = "git_commit"
    BATCHES = "batches"  # the incoming batch files it was trained with, comma-separated
    DECISION = "decision"  # written last: a version without it is judged again
    REPLACED_VERSION = "replaced_version"  # the champion its promotion replaced
    IDENTICAL_RUN = "identical_run"  # another run that trained the same model
    ROLLED_BACK = "rolled_back"  # when it stopped being champion by a rollback
    RESTORED_BY_ROLLBACK = "restored_by_rollback"
    ROLLBACK_REASON = "rollback_reason"
    ATTEMPTED = "attempted"  # on the run only (RUN_TAG_PREFIX): when a retrain judged it
    REGISTERED_VERSION = "registered_version"  # on another run of the same model
    SEEDS = "seeds"  # retrain.seeds > 1: each seed's delta, and whether the gain held


# On the registered model: one tag per alias move (promote, rollback, repair), numbered in
# order, its value a JSON object {when, alias, from, to, by, why, kind}.
ALIAS_MOVE_TAG = PREFIX + "alias_move.{:06d}"
ALIAS_MOVE_PREFIX = PREFIX + "alias_move."


# Tag.DECISION's values: what a retrain decided about the challenger.
PROMOTED, KEPT = "promoted", "kept"


def tag_name(key: Tag, prefix: str = PREFIX) -> str:
    return f"{prefix}{key}"


def tag_values(values: Mapping[Tag, object], prefix: str = PREFIX) -> dict[str, str]:
    return {tag_name(k, prefix): "" if v is None else str(v) for k, v in values.items()}
