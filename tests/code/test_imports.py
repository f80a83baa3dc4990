"""Nothing heavy and nothing on disk at import: the data stages never load torch or MLflow."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from .conftest import PYTHON

_PROBE = """
import json, sys
{imports}
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {roots!r})))
"""

DATA_STAGES = ["epochline.stages.load", "epochline.stages.normalize", "epochline.stages.split"]


def _imported(
    modules: list[str], roots: tuple[str, ...], cwd: Path, env: dict[str, str]
) -> list[str]:
    """Modules under `roots` loaded by importing `modules` into a fresh interpreter."""
    code = _PROBE.format(imports="\n".join(f"import {m}" for m in modules), roots=roots)
    result = subprocess.run(
        [PYTHON, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_data_stages_do_not_import_torch_or_mlflow(
    tmp_path: Path, user_env: dict[str, str]
) -> None:
    # One interpreter for the three: any of them pulling torch in shows up here.
    assert _imported(DATA_STAGES, ("torch", "mlflow"), tmp_path, user_env) == []
    # Nothing happens at import: no folders, logs or MLflow stores in the working directory.
    assert list(tmp_path.iterdir()) == []


def test_probe_sees_what_a_module_imports(tmp_path: Path, user_env: dict[str, str]) -> None:
    # Guards the check itself, cheaply: params is known to import yaml and pydantic.
    seen = _imported(["epochline.core.params"], ("yaml", "pydantic", "torch"), tmp_path, user_env)
    assert "yaml" in seen
    assert "pydantic" in seen
    assert "torch" not in seen
