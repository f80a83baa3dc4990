"""dvc.yaml against the code, read with `ast` (nothing is imported): each stage's deps name
every epochline module it runs, and the outputs the code lists are the ones dvc.yaml declares."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from epochline.core import paths
from epochline.training import runs

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"
DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())


def _file(module: str) -> Path | None:
    base = SRC / module.replace(".", "/")
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.exists():
            return path
    return None


def _type_checking(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(path: Path, everywhere: bool) -> set[str]:
    """epochline modules `path` imports: at module level (not under TYPE_CHECKING), or
    anywhere in it (a stage's main() imports its work late, after the numerics are set)."""
    tree = ast.parse(path.read_text())
    nodes = list(ast.walk(tree)) if everywhere else list(tree.body)
    if not everywhere:  # module-level blocks: try/if (not TYPE_CHECKING), with
        todo = [n for n in tree.body if not _type_checking(n)]
        nodes = []
        while todo:
            node = todo.pop()
            nodes.append(node)
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                todo += [c for c in ast.iter_child_nodes(node) if isinstance(c, ast.stmt)
                         and not _type_checking(c)]  # fmt: skip
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("epochline")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("epochline"):
            mod = node.module or ""
            found |= {f"{mod}.{a.name}" for a in node.names if _file(f"{mod}.{a.name}")}
            found.add(mod)
    return found


def _with_packages(module: str) -> set[str]:
    """Importing a.b.c runs a/__init__.py and a/b/__init__.py first."""
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


def _closure(stage_module: str) -> set[Path]:
    """The files a stage's process runs: its script's imports, then module-level ones."""
    seen: set[str] = set()
    todo = [m for i in _imports(_file(stage_module), True) for m in _with_packages(i)]  # type: ignore[arg-type]
    todo += list(_with_packages(stage_module))
    while todo:
        module = todo.pop()
        if module in seen or _file(module) is None:
            continue
        seen.add(module)
        for imported in _imports(_file(module), False):  # type: ignore[arg-type]
            todo += list(_with_packages(imported))
    files = {_file(m) for m in seen}
    return {f for f in files if f is not None and _has_code(f)}


def _has_code(path: Path) -> bool:
    """A package's __init__.py that holds only its docstring changes nothing."""
    body = ast.parse(path.read_text()).body
    return path.name != "__init__.py" or any(
        not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)) for n in body
    )


def _deps(stage: dict) -> set[Path]:
    return {(REPO / d).resolve() for d in stage["deps"] if str(d).startswith("src/")}


@pytest.mark.parametrize("name", sorted(DVC["stages"]))
def test_a_stages_deps_name_every_epochline_module_it_runs(name: str) -> None:
    stage = DVC["stages"][name]
    module = stage["cmd"].split("python -m ", 1)[1].split()[0]
    needed = _closure(module)
    deps = _deps(stage)
    missing = sorted(str(p.relative_to(REPO)) for p in needed - deps)
    extra = sorted(str(p.relative_to(REPO)) for p in deps - needed)
    assert missing == [], f"dvc.yaml stage {name} lacks deps: {missing}"
    assert extra == [], f"dvc.yaml stage {name} lists modules it never imports: {extra}"


def _declared_outputs() -> tuple[set[str], set[str]]:
    cached, tracked = set(), set()
    for stage in DVC["stages"].values():
        for entry in [*stage.get("outs", []), *stage.get("metrics", []), *stage.get("plots", [])]:
            path, opts = (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))
            (tracked if opts.get("cache") is False else cached).add(path)
    return cached, tracked


def test_the_output_lists_in_paths_are_dvc_yamls() -> None:
    cached, tracked = _declared_outputs()
    assert {str(p) for p in paths.CACHED_OUTPUTS} == cached
    assert {str(p) for p in paths.TRACKED_OUTPUTS} == tracked


def test_the_training_key_covers_all_of_training_and_the_code_it_names() -> None:
    code = runs.training_code()
    training = SRC / "epochline" / "training"
    assert {f"training/{p.name}" for p in training.glob("*.py")} <= set(code)
    assert {"data/preprocessing.py", "serving/model_code.py", "core/numerics.py"} <= set(code)
    assert not any(name.startswith("stages/") for name in code)  # where it runs, not what
