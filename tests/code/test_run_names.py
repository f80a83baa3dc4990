"""A run's name says what differs from its baseline's params.yaml."""

from __future__ import annotations

import pytest

from epochline.params import Params
from epochline.tracking import params_changes

BASE = Params().flat()


def _with(**changes: object) -> dict[str, object]:
    return {**BASE, **changes}


@pytest.mark.parametrize(
    ("now", "name"),
    [
        (BASE, ""),
        (_with(**{"train.lr": 0.01}), "lr=0.01"),
        (_with(**{"train.lr": 0.01, "train.epochs": 10}), "lr=0.01 epochs=10"),
        # `seed` is in several sections: the full key says which.
        (_with(**{"train.seed": 7}), "train.seed=7"),
        (_with(**{"data.id_column": "id"}), "id_column=id"),
        # Knobs that do not change what train makes are not part of the name.
        (_with(**{"retrain.min_delta": 0.05, "tracking.experiment_name": "x"}), ""),
    ],
)
def test_name_lists_changed_training_params_by_short_name(
    now: dict[str, object], name: str
) -> None:
    assert params_changes(now, BASE) == name


def test_no_baseline_means_nothing_to_name() -> None:
    assert params_changes(_with(**{"train.lr": 0.01}), {}) == ""
