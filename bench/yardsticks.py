"""What evaluate's yardsticks cost alone: the majority class and the logistic regression,
fitted and scored as the evaluate stage does (evaluation/baselines.py), in the bench's
project after its stages ran. Run as a child process, so its wall time holds the imports
and the reading of the split as evaluate's does."""

from __future__ import annotations

import epochline  # noqa: F401  # portable numerics before anything loads torch  # isort: skip
from epochline.core import paths
from epochline.core.files import read_json, read_parquet
from epochline.core.params import load_params
from epochline.data.preprocessing import Preprocessor
from epochline.evaluation import baselines


def main() -> None:
    params = load_params()
    preprocessor = Preprocessor.from_dict(read_json(paths.PREPROCESSOR, "preprocessing"))
    test = read_parquet(paths.TEST, "test table")
    inputs = baselines.pipeline_inputs(preprocessor, params.data.label_column, test)
    baselines.yardsticks(inputs, params.evaluate.threshold)


if __name__ == "__main__":
    main()
