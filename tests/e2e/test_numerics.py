"""Portable numerics: the same bytes from train and evaluate whatever the CPU's instruction
set and thread count, in the real stages under DVC (and torchrun), in separate processes.

A CPU is simulated by capping what each library may use: torch's kernels
(ATEN_CPU_CAPABILITY), MKL's code path (MKL_ENABLE_INSTRUCTIONS), NumPy's dispatch
(NPY_DISABLE_CPU_FEATURES) and glibc's libm variants (GLIBC_TUNABLES drops FMA and AVX2).
Where this machine lacks a feature, the cap changes nothing for it: the fast-path case
below shows that the caps do change the bytes when the numerics are not portable.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from numpy._core._multiarray_umath import __cpu_features__

from tests.conftest import copy_project, run, store, trained_run

pytestmark = pytest.mark.slow


def _numpy_without(*features: str) -> str:
    # NumPy warns about disabling what this machine lacks: name only what it has.
    return " ".join(f for f in features if __cpu_features__.get(f))


CPUS = {
    "sse4.2": {
        "ATEN_CPU_CAPABILITY": "default",
        "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
        "NPY_DISABLE_CPU_FEATURES": _numpy_without("X86_V3", "X86_V4", "AVX512_ICL"),
        "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2,-FMA,-AVX512F",
    },
    "avx2": {
        "ATEN_CPU_CAPABILITY": "avx2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        "NPY_DISABLE_CPU_FEATURES": _numpy_without("X86_V4", "AVX512_ICL"),
        "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F",
    },
    "avx512": {"ATEN_CPU_CAPABILITY": "avx512", "MKL_ENABLE_INSTRUCTIONS": "AVX512"},
}
# Each simulated CPU with another thread count: 1, 2 and 4 threads.
MACHINES = [("sse4.2", 1), ("avx2", 2), ("avx512", 4)]


def _env(cpu: str, threads: int) -> dict[str, str]:
    return {**CPUS[cpu], "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def outputs(project: Path) -> dict[str, bytes]:
    """Every output file of the pipeline, and dvc.lock, which hashes them."""
    files = {
        str(path.relative_to(project)): path.read_bytes()
        for folder in ("data", "models", "reports")
        for path in sorted((project / folder).rglob("*"))
        if path.is_file()
    }
    return files | {"dvc.lock": (project / "dvc.lock").read_bytes()}


def _train_on(project: Path, cpu: str, threads: int) -> dict[str, bytes]:
    """train and evaluate again, as DVC runs them, on the simulated machine."""
    run(["dvc", "repro", "--force", "--downstream", "train"], project, **_env(cpu, threads))
    return outputs(project)


def _differences(bytes_by_machine: dict[str, dict[str, bytes]]) -> dict[str, list[str]]:
    (first, expected), *others = bytes_by_machine.items()
    return {
        f"{first} vs {name}": [f for f in expected if got.get(f) != expected[f]]
        for name, got in others
        if got != expected
    }


def test_portable_outputs_are_the_same_bytes_on_every_simulated_cpu_and_thread_count(
    tmp_path: Path,
) -> None:
    project = copy_project(tmp_path / "project")
    run(["dvc", "repro"], project, **_env("avx512", 2))
    seen = {f"{cpu}/{n}": _train_on(project, cpu, n) for cpu, n in MACHINES}
    assert _differences(seen) == {}
    assert {"models/model.pt", "reports/metrics.json", "reports/test_predictions.parquet",
            "reports/roc.json", "reports/train_history.json"} <= set(seen["avx2/2"])  # fmt: skip
    # One model, so one run: every retraining found the first run's model and reused it.
    run_ = trained_run(project)
    assert run_.data.params["train.numerics"] == "portable"
    assert run_.data.tags["epochline.cpu_capability"] == "DEFAULT"


def test_two_processes_under_torchrun_give_the_same_bytes_on_every_simulated_cpu(
    tmp_path: Path,
) -> None:
    project = copy_project(tmp_path / "two", {"train": {"nproc_per_node": 2}})
    run(["dvc", "repro"], project, **_env("avx512", 2))
    seen = {f"{cpu}/{n}": _train_on(project, cpu, n) for cpu, n in [MACHINES[0], MACHINES[2]]}
    assert _differences(seen) == {}


def test_fast_numerics_use_the_cpus_own_kernels_and_differ_between_cpus(tmp_path: Path) -> None:
    # The check above could pass by accident if the simulated CPUs changed nothing: here,
    # with torch and MKL free to choose, the same simulation gives other bytes.
    project = copy_project(tmp_path / "fast", {"train": {"numerics": "fast"}})
    run(["dvc", "repro"], project, **_env("avx2", 2))
    seen = {cpu: _train_on(project, cpu, 2) for cpu in ("sse4.2", "avx2")}
    assert "models/model.pt" in _differences(seen)["sse4.2 vs avx2"]
    # The choice is in the run and in the training key.
    client = store(project)
    runs = client.search_runs([client.get_experiment_by_name("epochline").experiment_id])
    assert {r.data.params["train.numerics"] for r in runs} == {"fast"}
    assert {r.data.tags["epochline.cpu_capability"] for r in runs} == {"DEFAULT", "AVX2"}
    portable = copy_project(tmp_path / "portable")
    run(["dvc", "repro", "train"], portable)
    keys = [
        json.loads((p / "models/model.json").read_text())["train_key"] for p in (project, portable)
    ]
    assert keys[0] != keys[1]


def test_reproduce_of_a_fast_run_on_another_cpu_is_equivalent_within_the_tolerance(
    tmp_path: Path,
) -> None:
    project = copy_project(tmp_path / "fast", {"train": {"numerics": "fast"}})
    run(["epochline", "repro"], project, **_env("avx2", 2))
    run_id = trained_run(project).info.run_id

    same_cpu = run(["epochline", "reproduce", run_id], project, **_env("avx2", 2))
    assert same_cpu.stdout.startswith("reproduce: IDENTICAL: "), same_cpu.stdout
    # Only its own lines: none of DVC's (`A data/raw.parquet`, stages running).
    assert same_cpu.stdout.count("\n") == 1, same_cpu.stdout
    assert "raw.parquet" not in same_cpu.stderr and "Running stage" not in same_cpu.stderr

    other_cpu = run(["epochline", "reproduce", run_id], project, **_env("sse4.2", 1))
    verdict, gaps = other_cpu.stdout.splitlines()
    assert verdict.startswith("reproduce: EQUIVALENT: "), other_cpu.stdout
    assert "trained on cpu, fast numerics (AVX2 kernels)" in verdict
    assert "rebuilt on cpu, fast numerics (DEFAULT kernels)" in verdict
    assert "every metric within 0.01 at every step" in verdict
    listed = dict(item.rsplit(" ", 1) for item in gaps.split(": ", 1)[1].split("; ")[0].split(", "))
    assert {"test_accuracy", "test_roc_auc", "val_loss", "train_loss"} <= set(listed)
    assert all(0 <= float(v) <= 0.01 for v in listed.values()), gaps
    assert float(gaps.rsplit("weights ", 1)[1]) > 0

    strict = run(
        ["epochline", "reproduce", run_id, "--tolerance", "0"], project, check=False,
        **_env("sse4.2", 1),
    )  # fmt: skip
    assert strict.returncode == 1, strict.stdout + strict.stderr
    assert strict.stdout.startswith("reproduce: DIFFERENT: "), strict.stdout
