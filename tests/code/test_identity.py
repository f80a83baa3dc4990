"""What a model is: checkpoint bytes that never depend on a file name, and its identity."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import torch

from epochline.core.files import write_bytes
from epochline.training import model

CONFIG = {"features": ["x0", "x1", "x2"], "hidden_size": 4, "threshold": 0.5, "label": "label"}


def _data(seed: int = 0, config: dict[str, object] = CONFIG) -> dict[str, object]:
    return model.checkpoint(model.build(3, 4, seed), config)


def test_the_same_model_saved_under_two_names_gives_the_same_bytes(tmp_path: Path) -> None:
    write_bytes(model.checkpoint_bytes(_data()), tmp_path / "a.pt")
    write_bytes(model.checkpoint_bytes(_data()), tmp_path / "other-name.pt")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "other-name.pt").read_bytes()
    # No temporary name leaks into the archive's inner folder.
    assert b".tmp" not in (tmp_path / "a.pt").read_bytes()
    restored = torch.load(tmp_path / "a.pt", weights_only=True)
    assert model.identity(restored) == model.identity(_data())


def test_checkpoint_bytes_are_the_same_in_another_process(tmp_path: Path) -> None:
    script = (
        "import sys; from epochline.training import model; "
        "from tests.code.test_identity import _data; "
        "sys.stdout.buffer.write(model.checkpoint_bytes(_data()))"
    )
    root = Path(__file__).resolve().parents[2]
    other = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True)
    assert other.returncode == 0, other.stderr
    assert other.stdout == model.checkpoint_bytes(_data())


def test_identity_follows_weights_and_config_not_serialisation() -> None:
    data = _data()
    buffer = io.BytesIO()
    torch.save(data, buffer, _use_new_zipfile_serialization=False)  # other bytes, same model
    buffer.seek(0)
    assert model.identity(torch.load(buffer, weights_only=True)) == model.identity(data)
    assert model.identity(_data(seed=1)) != model.identity(data)
    assert model.identity(_data(config={**CONFIG, "threshold": 0.6})) != model.identity(data)
