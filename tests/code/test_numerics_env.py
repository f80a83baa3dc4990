"""numerics.py: which CPU kernels torch loads with, chosen before it loads (fast, in
fresh interpreters: this test process loaded torch long ago)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from epochline.core import numerics
from epochline.serving import model_code
from tests.conftest import tool_env


def _python(code: str, **env: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", code], env=tool_env(**env), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


_REPORT = """
import json, os, sys
{before}
import torch
print(json.dumps({{
    "capability": torch.backends.cpu.get_cpu_capability(),
    "env": {{k: os.environ.get(k) for k in ("ATEN_CPU_CAPABILITY", "MKL_CBWR")}},
    "active": os.environ.get("EPOCHLINE_NUMERICS"),
}}))
"""


def test_importing_epochline_makes_torch_load_its_baseline_kernels() -> None:
    got = _python(_REPORT.format(before="import epochline"), ATEN_CPU_CAPABILITY="avx2")
    assert got["capability"] == "DEFAULT"
    assert got["env"] == numerics.PORTABLE_CPU
    assert got["active"] == "portable"


def test_fast_gives_back_the_users_own_settings_before_torch_loads() -> None:
    before = "import epochline\nfrom epochline.core import numerics\nnumerics.select('fast')"
    got = _python(_REPORT.format(before=before), ATEN_CPU_CAPABILITY="avx2")
    assert got["capability"] == "AVX2"
    assert got["env"] == {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": None}
    assert got["active"] == "fast"


def test_a_child_of_an_epochline_process_restores_the_users_settings_too() -> None:
    # The `epochline` command runs DVC, which runs the train stage: the stage sees the
    # portable variables its grandparent set, and still gives fast the user's own.
    parent = _python(_REPORT.format(before="import epochline"), ATEN_CPU_CAPABILITY="avx512")
    assert parent["env"]["ATEN_CPU_CAPABILITY"] == "default"
    code = (
        "import epochline, json, os, subprocess, sys\n"
        "child = 'import epochline\\nfrom epochline.core import numerics'"
        "\nchild += '\\nnumerics.select(\"fast\")'"
        "\nchild += '\\nimport os, torch; print(torch.backends.cpu.get_cpu_capability(),"
        ' os.environ.get("ATEN_CPU_CAPABILITY"))\'\n'
        "out = subprocess.run([sys.executable, '-c', child], capture_output=True, text=True)\n"
        "print(json.dumps(out.stdout.split()))"
    )
    assert _python(code, ATEN_CPU_CAPABILITY="avx2") == ["AVX2", "avx2"]


def test_asking_for_other_numerics_after_torch_loaded_is_an_error() -> None:
    code = (
        "import epochline, torch, json\nfrom epochline.core import numerics\n"
        "numerics.select('portable')\n"
        "try:\n    numerics.select('fast')\nexcept numerics.NumericsError as e:\n"
        "    print(json.dumps(str(e)))"
    )
    assert "after torch loaded with 'portable'" in str(_python(code))


def test_torch_loaded_before_epochline_fails_the_portable_check() -> None:
    code = (
        "import torch, json\nfrom epochline.core import numerics\n"
        "try:\n    numerics.check('portable')\nexcept numerics.NumericsError as e:\n"
        "    print(json.dumps(str(e)))"
    )
    assert "imported before epochline" in str(_python(code, ATEN_CPU_CAPABILITY="avx2"))


def test_the_logged_models_own_copy_of_the_settings_is_the_same() -> None:
    # serving/model_code.py imports nothing from epochline (it is the logged model's code).
    assert model_code.PORTABLE_CPU == numerics.PORTABLE_CPU


@pytest.mark.parametrize("mode", numerics.MODES)
def test_one_thread_under_portable_and_the_callers_count_after(mode: numerics.Numerics) -> None:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with numerics.one_thread(mode):
            inside = torch.get_num_threads()
        assert inside == (1 if mode == "portable" else 2)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


# What chooses train.numerics (the train stage, retrain's extra seeds, `epochline seeds`)
# must import without torch: its choice is made only once params.yaml is read.
_CHOOSERS = ["epochline.stages.train", "epochline.retrain.loop", "epochline.cli",
             "epochline.review.seeds", "epochline.serving.scoring"]  # fmt: skip


@pytest.mark.parametrize("module", _CHOOSERS)
def test_what_picks_the_numerics_imports_without_torch(module: str) -> None:
    code = f"import json, sys, {module}\nprint(json.dumps('torch' in sys.modules))"
    assert _python(code) is False
