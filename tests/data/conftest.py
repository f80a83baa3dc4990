"""The data pipeline (load → normalize → split) run once, in a temp copy of the repo layout."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from epochline.core.params import Params, load_params
from epochline.stages import load, normalize, split

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class PipelineRun:
    root: Path
    params: Params

    def read(self, path: Path) -> pd.DataFrame:
        return pd.read_parquet(self.root / path)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PipelineRun]:
    root = tmp_path_factory.mktemp("pipeline")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    # The stages read and write paths relative to the repo root, where DVC runs them.
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        for stage in (load, normalize, split):
            stage.main()
        params = load_params()
    yield PipelineRun(root, params)
