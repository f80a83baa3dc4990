"""The benchmark suite (bench/, `make bench`) runs end to end at a tiny size: it can't rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYTHON = str(Path(sys.executable).absolute())
STAGES = ["load", "normalize", "split", "train", "evaluate"]
FIGURES = ["wall_s", "cpu_s", "peak_rss_mb"]


def _positive(usage: dict[str, float]) -> bool:
    return all(usage[k] > 0 for k in FIGURES)


@pytest.mark.slow
def test_suite_measures_every_stage_floor_and_loop(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    # --no-repro: the timed full `dvc repro` doubles the run; the no-op repros still run.
    args = ["--rows", "2000", "--epochs", "1", "--batch-sizes", "256", "--loop-rows", "2000"]
    args += ["--loop-window", "0.1", "--loop-rounds", "1"]
    args += ["--no-repro", "--default-runs", "1"]
    done = subprocess.run(
        [PYTHON, "-m", "bench", *args, "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    (size,) = result["sizes"]
    assert size["rows"] == 2000
    assert sorted(size["stages"]) == sorted(STAGES)
    assert all(_positive(size["stages"][s]) for s in STAGES)
    floors = STAGES
    assert sorted(size["floors"]) == sorted(floors)
    assert all(_positive(size["floors"][f]) for f in floors)
    assert all(min(size["ratios"][f].values()) > 0 for f in floors)
    assert all(size["rss_per_table"][s] > 0 for s in STAGES)
    assert size["end_to_end"]["stages_ratio"] > 0
    assert size["end_to_end"]["dvc_repro_s"] is None
    assert _positive(size["end_to_end"]["plain"]) and size["end_to_end"]["plain_ratio"] > 0
    # The default size: params.yaml as committed, experiments under both numerics.
    default = result["default"]
    assert sorted(default["experiments"]) == ["fast", "portable"]
    assert all(len(w) == 1 and w[0] > 0 for w in default["experiments"].values())
    assert _positive(default["repro_force"]) and _positive(default["noop_exp"])
    assert sorted(default["stages"]) == sorted(default["imports"]) == sorted(STAGES)
    assert size["dvc"]["noop_ratio"] > 0
    assert _positive(size["dvc"]["noop"]) and _positive(size["dvc"]["noop_minimal"])
    # What portable numerics cost: the train stage again with fast ones, and the loop
    # under each (the raw loop and fit on the same numerics and threads).
    assert _positive(size["train_fast"]) and size["portable_cost"] > 0
    # evaluate's yardsticks, alone (the report shows them beside the stage).
    assert _positive(size["yardsticks"])
    assert "evaluate's yardsticks" in out.with_suffix(".md").read_text()
    # evaluate's model card, alone: its slices and its intervals.
    card = size["card"]
    assert _positive(card) and card["rows"] > 0 and card["features"] == 10
    assert min(card["slices_s"], card["intervals_s"]) > 0 and card["slices"] > 0
    assert "evaluate's model card alone, on " in out.with_suffix(".md").read_text()
    loops = {loop["numerics"]: loop for loop in result["training_loop"]}
    assert sorted(loops) == ["fast", "portable"]
    for loop in loops.values():
        assert loop["batch_size"] == 256 and loop["ratio"] > 0
        assert loop["raw"]["samples_per_s"] > 0 and loop["fit"]["samples_per_s"] > 0
        assert loop["raw"]["numerics"] == loop["fit"]["numerics"] == loop["numerics"]
    assert loops["portable"]["fit"]["threads"] == 1
    table = out.with_suffix(".md").read_text()
    assert table in done.stdout
    assert all(f"| {s} |" in table for s in STAGES)
    assert "Portable numerics (the default) against fast ones: train " in table
    assert "| portable (1) | 256 |" in table
    assert table.index("### The default size") < table.index("### 2,000 rows")
    assert "| `dvc exp run -S train.lr=…` (train + evaluate, a new run), fast numerics |" in table
