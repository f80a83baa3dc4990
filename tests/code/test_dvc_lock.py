"""dvc.lock records the code as committed: else a fresh clone's pipeline rewrites it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def test_every_source_dependency_in_dvc_lock_matches_the_file() -> None:
    lock = yaml.safe_load((REPO / "dvc.lock").read_text())
    stale = [
        f"{stage}: {dep['path']}"
        for stage, entry in lock["stages"].items()
        for dep in entry.get("deps", [])
        if dep["path"].startswith("src/")
        and hashlib.md5((REPO / dep["path"]).read_bytes()).hexdigest() != dep["md5"]
    ]
    assert stale == [], f"dvc.lock is stale (run `epochline repro` and commit): {stale}"
