"""The suite's driver: per size a temporary project, the real stages, their floors, DVC.

Stdlib (and PyYAML) only, on purpose: a child started by vfork inherits its parent's RSS
as the start of its own peak, so this process must stay small (see measure.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml

from bench.measure import ChildFailed, Usage, measure
from bench.project import PYTHON, REPO, child_env, copy_project, floor_env, set_params
from bench.report import markdown

STAGES = ("load", "normalize", "split", "train", "evaluate")
NUMERICS = ("portable", "fast")  # train.numerics: the default, and the CPU's own kernels
DEFAULT_OUT = REPO / "bench" / "results" / "bench.json"
# Light on purpose: torch's import alone costs seconds, and the floors report the device.
_PROBE = "from epochline.core.params import TrainParams; print(' '.join(TrainParams.model_fields))"


def _ints(text: str) -> list[int]:
    return [int(v.replace("_", "")) for v in text.split(",") if v.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument(
        "--rows",
        type=_ints,
        default=[1000, 1_000_000, 10_000_000],
        help="table sizes, comma-separated; '' runs none (default 1000,1000000,10000000)",
    )
    p.add_argument(
        "--default-runs",
        type=int,
        default=3,
        help="experiments timed per numerics at the default size (params.yaml as committed); "
        "0 skips that table (3)",
    )
    p.add_argument("--epochs", type=int, default=3, help="train.epochs of the stages (3)")
    p.add_argument("--batch-size", type=int, default=1024, help="train.batch_size (1024)")
    p.add_argument(
        "--batch-sizes",
        type=_ints,
        default=[64, 1024, 8192],
        help="training-loop benchmark batch sizes; '' runs none (64,1024,8192)",
    )
    p.add_argument(
        "--loop-rows",
        type=int,
        default=0,
        help="rows of the loop benchmark (default min(largest size, 1000000), past the caches)",
    )
    p.add_argument(
        "--loop-window",
        type=float,
        default=1.0,
        help="seconds per timed window of the loop benchmark; the best of 3 counts (1.0)",
    )
    p.add_argument(
        "--loop-rounds",
        type=int,
        default=2,
        help="rounds of the loop benchmark, raw and fit alternating; each kind's best (2)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads of the loop benchmark, both kinds (0: torch's default)",
    )
    p.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cpu", "cuda", "mps"],
        help="torch device: train.device where the stage has it, and the floors",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="the JSON; the Markdown goes beside it (bench/results/bench.json)",
    )
    p.add_argument(
        "--no-repro",
        action="store_true",
        help="skip the timed `dvc repro --force` (the quick test does)",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary projects")
    return p.parse_args(argv)


def _output(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout


def environment(opts: argparse.Namespace) -> dict[str, Any]:
    train_fields = _output([PYTHON, "-c", _PROBE], REPO, child_env()).split()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                .splitlines() if line.startswith("model name")), platform.processor())  # fmt: skip
    return {
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_count": os.cpu_count(), "cpu_model": cpu, "python": platform.python_version(),
        **{pkg: version(pkg) for pkg in ("torch", "mlflow", "dvc")},
        "device": opts.device,  # `auto` until a floor says what it resolved to
        "train_device_param": "device" in train_fields,
        "load_average": os.getloadavg()[0],  # other work on the machine skews timings
        "commit": _output(["git", "rev-parse", "--short", "HEAD"], REPO, child_env()).strip(),
        "settings": {"epochs": opts.epochs, "batch_size": opts.batch_size, "n_features": 10,
                     "loop_window_s": opts.loop_window, "batch_sizes": opts.batch_sizes,
                     "loop_rounds": opts.loop_rounds},
    }  # fmt: skip


class Run:
    """One size's project and what was measured in it."""

    def __init__(self, project: Path) -> None:
        self.project = project
        self.logs = project.parent / "logs"

    def python(self, name: str, module: str, *args: str, floor: bool = False) -> Usage:
        env = floor_env() if floor else child_env()
        log = self.logs / f"{name}.log"
        return measure([PYTHON, "-m", module, *args], self.project, env, log)

    def dvc(self, *args: str, name: str) -> Usage:
        return measure(["dvc", *args], self.project, child_env(), self.logs / f"dvc-{name}.log")

    def fresh_store(self) -> None:
        for name in ("mlflow.db", ".mlflow.db.lock", "mlartifacts"):
            path = self.project / name
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)


def _uncached(pipeline: dict[str, Any]) -> set[str]:
    """The outputs that dvc.yaml marks `cache: false` (outs, metrics and plots alike)."""
    return {
        path
        for stage in pipeline["stages"].values()
        for kind in ("outs", "metrics", "plots")
        for entry in stage.get(kind, [])
        if isinstance(entry, dict)
        for path, options in entry.items()
        if (options or {}).get("cache") is False
    }


def _minimal_pipeline(project: Path) -> None:
    """dvc.yaml → one stage, `cmd: true`, with every output of the real pipeline as its
    outs (one dep, params.yaml, or DVC would run it on every repro), committed by DVC."""
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    outs = [o["path"] for stage in lock["stages"].values() for o in stage.get("outs", [])]
    uncached = _uncached(yaml.safe_load((project / "dvc.yaml").read_text()))
    stage = {"cmd": "true", "deps": ["params.yaml"],
             "outs": [{o: {"cache": False}} if o in uncached else o for o in outs]}  # fmt: skip
    (project / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"noop": stage}}))
    _output(["dvc", "commit", "-f", "noop"], project, child_env())


def _check_noop(run: Run, name: str) -> None:
    text = (run.logs / f"dvc-{name}.log").read_text()
    if "Running stage" in text:
        raise ChildFailed(f"dvc repro ({name}) ran a stage; it should have been a no-op:\n{text}")


def measure_dvc(run: Run, full_repro: bool) -> dict[str, Any]:
    repro = None
    if full_repro:
        run.fresh_store()  # else train finds the stage-by-stage run and reuses it
        repro = run.dvc("repro", "--force", name="repro")
    else:  # the stage-by-stage outputs, hashed into dvc.lock as a repro would leave them
        _output(["dvc", "commit", "-f"], run.project, child_env())
    noop = run.dvc("repro", name="noop")
    _check_noop(run, "noop")
    status = run.dvc("status", name="status")
    _minimal_pipeline(run.project)
    minimal = run.dvc("repro", name="noop-minimal")
    _check_noop(run, "noop-minimal")
    return {
        "repro": repro and repro.as_dict(), "noop": noop.as_dict(), "status": status.as_dict(),
        "noop_minimal": minimal.as_dict(), "noop_ratio": noop.wall_s / minimal.wall_s,
        "noop_vs_status": noop.wall_s / status.wall_s,
    }  # fmt: skip


def _floors(run: Run, opts: argparse.Namespace, device: str) -> dict[str, Usage]:
    """The per-stage floors, after the stages (they read the stages' inputs); checked."""
    data = "bench.floors.data"
    table = str(run.logs / "table.json")
    floors = {"load": run.python("floor-load", data, "load", "--report", table, floor=True)}
    floors |= {s: run.python(f"floor-{s}", data, s, floor=True) for s in ("normalize", "split")}
    run.python("floor-check", data, "check", floor=True)
    floors["train"] = run.python(
        "floor-train", "bench.floors.loop", "raw", "--project",
        "--batch-size", str(opts.batch_size), "--device", device,
        "--report", str(run.logs / "floor-train.json"), floor=True,
    )  # fmt: skip
    floors["evaluate"] = run.python("floor-evaluate", "bench.floors.evaluate", floor=True)
    return floors


def _ratios(stage: Usage, floor: Usage) -> dict[str, float]:
    return {
        "wall": stage.wall_s / floor.wall_s,
        "cpu": stage.cpu_s / floor.cpu_s,
        "rss": stage.peak_rss_mb / floor.peak_rss_mb,
    }


def bench_size(rows: int, opts: argparse.Namespace, env: dict[str, Any], root: Path) -> dict:
    train: dict[str, Any] = {"epochs": opts.epochs, "batch_size": opts.batch_size}
    if env["train_device_param"]:
        train["device"] = opts.device
    overrides = {"data": {"n_rows": rows, "n_features": 10, "source": "synthetic"}, "train": train}
    run = Run(copy_project(root / "project", overrides))
    started = time.perf_counter()
    stages = {s: run.python(s, f"epochline.stages.{s}") for s in STAGES}
    floors = _floors(run, opts, env["device"])
    # A part of evaluate, alone (a module of this package: imported from the repo, as floors).
    yardsticks = run.python("yardsticks", "bench.yardsticks", floor=True)
    card_json = run.logs / "card.json"
    card = run.python("card", "bench.card", "--report", str(card_json), floor=True)
    e2e = run.python(
        "floor-end-to-end", "bench.floors.end_to_end", "--device", env["device"], floor=True
    )
    e2e_plain = run.python("floor-plain", "bench.floors.end_to_end", "--plain",
                           "--device", env["device"], floor=True)  # fmt: skip
    dvc = measure_dvc(run, not opts.no_repro)
    # What portable numerics cost: the train stage again with the CPU's own kernels (last:
    # it leaves a fast model in the project).
    set_params(run.project, {"train": {"numerics": "fast"}})
    train_fast = run.python("train-fast", "epochline.stages.train")
    table_bytes = json.loads((run.logs / "table.json").read_text())["table_bytes"]
    stage_sum = sum(u.wall_s for u in stages.values())
    repro_s = dvc["repro"] and dvc["repro"]["wall_s"]
    return {
        "rows": rows, "table_mb": table_bytes / 2**20,
        "stages": {k: u.as_dict() for k, u in stages.items()},
        "train_fast": train_fast.as_dict(), "yardsticks": yardsticks.as_dict(),
        "card": card.as_dict() | json.loads(card_json.read_text()),
        "portable_cost": stages["train"].wall_s / train_fast.wall_s,
        "floors": {k: u.as_dict() for k, u in floors.items()},
        "ratios": {k: _ratios(stages[k], f) for k, f in floors.items()},
        "rss_per_table": {k: u.peak_rss_mb * 2**20 / table_bytes for k, u in stages.items()},
        "end_to_end": {
            "stages_sum_s": stage_sum, "floor": e2e.as_dict(), "dvc_repro_s": repro_s,
            "stages_ratio": stage_sum / e2e.wall_s, "dvc_ratio": repro_s and repro_s / e2e.wall_s,
            "plain": e2e_plain.as_dict(), "plain_ratio": stage_sum / e2e_plain.wall_s,
            "stages_fast_s": stage_sum - stages["train"].wall_s + train_fast.wall_s,
        },
        "dvc": dvc, "suite_s": time.perf_counter() - started,
        "device": json.loads((run.logs / "floor-train.json").read_text())["device"],
    }  # fmt: skip


# What each stage imports to do its work, alone: the floor of a stage at the default size,
# where the rows take milliseconds and starting takes seconds.
LIBRARIES = {
    "load": "pandas, pyarrow.parquet",
    "normalize": "pandas, pyarrow.parquet",
    "split": "pandas, pyarrow.parquet",
    "train": "pandas, pyarrow.parquet, torch, torch._dynamo, mlflow, "
    "mlflow.store.tracking.sqlalchemy_store",
    "evaluate": "pandas, pyarrow.parquet, torch, mlflow, mlflow.store.tracking.sqlalchemy_store, "
    "sklearn.linear_model, sklearn.metrics, matplotlib.figure",
}


# The import alone, at its cheapest: no cycle collection, no interpreter teardown.
_IMPORT = "import gc, os; gc.disable(); import {}; os._exit(0)"


def _experiments(run: Run, numerics: str, runs: int) -> list[float]:
    """`dvc exp run -S train.lr=…` a new lr each time (a new run, its model logged anew)."""
    walls = []
    for i in range(runs):
        lr = f"train.lr={0.01 + i * 1e-4 + (5e-5 if numerics == 'fast' else 0):.5f}"
        usage = run.dvc("exp", "run", "-S", lr, "-S", f"train.numerics={numerics}",
                        name=f"exp-{numerics}-{i}")  # fmt: skip
        walls.append(usage.wall_s)
    return walls


def bench_default(runs: int, root: Path) -> dict[str, Any]:
    """The defaults as a user meets them: params.yaml as committed (1,000 synthetic rows);
    a forced `dvc repro` on a fresh store, experiments under both numerics, each stage
    beside its libraries' import, and DVC alone (a no-op `dvc exp run`)."""
    run = Run(copy_project(root / "project", {}))
    first = run.dvc("repro", name="default-first")  # DVC's caches warm, as a user's are
    run.fresh_store()
    forced = run.dvc("repro", "--force", name="default-force")
    experiments = {n: _experiments(run, n, runs) for n in NUMERICS}
    noop = run.dvc("exp", "run", name="default-noop")  # the last experiment again: nothing runs
    _check_noop(run, "default-noop")
    _output(["git", "checkout", "--", "params.yaml"], run.project, child_env())  # committed
    run.fresh_store()  # train logs a new run, as in an experiment
    stages = {s: run.python(f"default-{s}", f"epochline.stages.{s}") for s in STAGES}
    imports = {
        s: measure([PYTHON, "-c", _IMPORT.format(libs)], run.project, child_env(),
                   run.logs / f"imports-{s}.log")
        for s, libs in LIBRARIES.items()
    }  # fmt: skip
    return {
        "rows": yaml.safe_load((run.project / "params.yaml").read_text())["data"]["n_rows"],
        "first_repro": first.as_dict(), "repro_force": forced.as_dict(),
        "experiments": experiments, "stages": {k: u.as_dict() for k, u in stages.items()},
        "imports": {k: u.as_dict() for k, u in imports.items()}, "noop_exp": noop.as_dict(),
    }  # fmt: skip


def bench_loop(opts: argparse.Namespace, env: dict[str, Any], root: Path) -> list[dict]:
    rows = opts.loop_rows or min(max(opts.rows, default=1_000_000), 1_000_000)
    results = []
    root.mkdir(parents=True, exist_ok=True)
    for numerics in NUMERICS:
        for batch in opts.batch_sizes:
            entry: dict[str, Any] = {"batch_size": batch, "rows": rows, "numerics": numerics}
            # raw, fit, raw, fit: each kind's best of its rounds, so that the machine's
            # drift between two processes does not decide the ratio.
            for round_, kind in [(r, k) for r in range(opts.loop_rounds) for k in ("raw", "fit")]:
                name = f"{numerics}-{kind}-{batch}-{round_}"
                usage = measure(
                    [PYTHON, "-m", "bench.floors.loop", kind, "--rows", str(rows),
                     "--window", str(opts.loop_window), "--batch-size", str(batch),
                     "--threads", str(opts.threads), "--device", env["device"],
                     "--report", str(root / f"{name}.json")],
                    root, floor_env() | {"BENCH_NUMERICS": numerics}, root / f"{name}.log",
                )  # fmt: skip
                got = json.loads((root / f"{name}.json").read_text()) | usage.as_dict()
                if kind not in entry or got["samples_per_s"] > entry[kind]["samples_per_s"]:
                    entry[kind] = got
            entry["ratio"] = entry["fit"]["samples_per_s"] / entry["raw"]["samples_per_s"]
            results.append(entry)
    return results


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    env = environment(opts)
    root = Path(tempfile.mkdtemp(prefix="epochline-bench-"))
    result: dict[str, Any] = {"environment": env, "sizes": []}
    try:
        if opts.default_runs > 0:
            print("bench: the default size ...", file=sys.stderr, flush=True)
            result["default"] = bench_default(opts.default_runs, root / "default")
        for rows in opts.rows:
            print(f"bench: {rows} rows ...", file=sys.stderr, flush=True)
            result["sizes"].append(bench_size(rows, opts, env, root / f"rows-{rows}"))
            env["device"] = result["sizes"][-1]["device"]
        print("bench: training loop ...", file=sys.stderr, flush=True)
        result["training_loop"] = bench_loop(opts, env, root / "loop")
    except ChildFailed as exc:
        print(f"bench: failed: {exc}\n(projects and logs kept under {root})", file=sys.stderr)
        return 1
    if not opts.keep:
        shutil.rmtree(root, ignore_errors=True)
    env["load_average_end"] = os.getloadavg()[0]
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    opts.out.with_suffix(".md").write_text(text)
    print(text)
    print(f"bench: wrote {opts.out} and {opts.out.with_suffix('.md')}", file=sys.stderr)
    return 0
