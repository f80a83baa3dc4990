"""The example tables' params.yaml are the repo's params.yaml with only the data keys set, so
they cannot drift from it when a default changes; and every example is written, and run end
to end, by name. Fast: it reads files, nothing runs."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import pytest
import yaml

from tests.conftest import REPO
from tests.e2e import test_real_tables, test_real_tables_rare

EXAMPLES = sorted(p.parent.name for p in (REPO / "examples").glob("*/params.yaml"))


def sections(text: str) -> dict[str, list[str]]:
    """Lines by top-level key, comments included; the comment lines before the first key
    under ''."""
    found: dict[str, list[str]] = {"": []}
    key = ""
    for line in text.splitlines():
        if line[:1].isalpha():
            key = line.split(":", 1)[0]
            found[key] = []
        found[key].append(line)
    return found


def write_table() -> ModuleType:
    spec = importlib.util.spec_from_file_location("write_table", REPO / "examples/write_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("table", EXAMPLES)
def test_example_params_differ_from_params_yaml_only_under_data(table: str) -> None:
    base_text = (REPO / "params.yaml").read_text()
    text = (REPO / "examples" / table / "params.yaml").read_text()
    base, example = sections(base_text), sections(text)
    # Two lines of its own on top (what the table is), then params.yaml's own comment.
    header = example[""]
    assert len(header) == len(base[""]) + 2 and header[2:] == base[""], header
    assert all(line.startswith("# ") for line in header[:2])
    assert list(example) == list(base)
    for key in base:
        if key not in ("", "data"):
            assert example[key] == base[key], f"examples/{table}/params.yaml: {key} differs"
    data, base_data = yaml.safe_load(text)["data"], yaml.safe_load(base_text)["data"]
    assert list(data) == list(base_data)  # the same keys in the same order: values set
    assert data["source"] == f"data/external/{table}.csv"


def test_every_example_is_written_and_run_end_to_end() -> None:
    assert sorted(write_table().TABLES) == EXAMPLES
    tables = [*test_real_tables.TABLES.values(), *test_real_tables_rare.RUNS.values()]
    ran = {t.name for t in tables}
    assert sorted(ran) == EXAMPLES
