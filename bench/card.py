"""What evaluate's model card costs alone, in the bench's project after its stages ran: the
parts that grow with the test rows, its slices (evaluation/slices.py: every feature cut, the
metrics per slice) and its bootstrap intervals (evaluation/intervals.py), as the card
computes them from the test rows and the answers evaluate wrote. Each part is timed in this
process after the imports and the reads (evaluate does those anyway); `--report` writes the
seconds as JSON. The rest of the card (its tables' digests, the rendering) is in the stage."""

from __future__ import annotations

import epochline  # noqa: F401  # portable numerics before anything loads torch  # isort: skip
import argparse
import json
import time
from pathlib import Path

from epochline.core import paths
from epochline.core.files import read_json, read_parquet
from epochline.core.params import load_params
from epochline.data.preprocessing import Preprocessor
from epochline.data.schema import Schema
from epochline.evaluation import intervals, metrics, slices


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.card", description=__doc__)
    parser.add_argument("--report", type=Path, required=True, help="the JSON of seconds")
    report = parser.parse_args(argv).report
    params = load_params()
    test = read_parquet(paths.TEST, "test table")
    answers = read_parquet(paths.PREDICTIONS, "test predictions")
    y = test[params.data.label_column].to_numpy()
    prob, pred = answers["probability"].to_numpy(), answers["label"].to_numpy()
    values = metrics.classification_metrics(y, prob, pred)
    schema = Schema.from_dict(read_json(paths.SCHEMA, "schema"))
    specs = list(Preprocessor.from_dict(read_json(paths.PREPROCESSOR, "preprocessing")).features)
    retrain = params.retrain

    start = time.perf_counter()
    found = slices.slices(test, slices.Answers.of(y, prob, pred), schema, specs)
    sliced = time.perf_counter()
    intervals.bootstrap(y, prob, pred, values, retrain.n_bootstrap, retrain.confidence,
                        retrain.seed)  # fmt: skip
    seconds = {"slices_s": sliced - start, "intervals_s": time.perf_counter() - sliced,
               "slices": len(found), "features": len(schema.features), "rows": len(y)}  # fmt: skip
    report.write_text(json.dumps(seconds, indent=2) + "\n")


if __name__ == "__main__":
    main()
