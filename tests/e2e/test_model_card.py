"""The model card end to end: `epochline retrain` (a real `dvc repro`, a real registry) on a
table with a capped categorical column, then the card where it lands: reports/model_card.md,
the run's artifact, `epochline card RUN` and `epochline card @champion`, and the same
bytes from a fresh store."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.project import commit, set_params
from epochline.data.sources import make_synthetic
from epochline.review import seeds
from tests.conftest import copy_project, run, store, trained_run, workspace_restored

pytestmark = pytest.mark.slow

EPOCHLINE = str(Path(sys.executable).parent / "epochline")
CARD = "reports/model_card.md"
TABLE = "data/external/table.csv"
# The card is about the model, not the decision: any first model becomes champion.
PARAMS = {"data": {"source": TABLE},
          "retrain": {"min_metric": 0.0, "require_beats_baseline": False}}  # fmt: skip


def _table(path: Path) -> None:
    """The synthetic task plus a categorical column of 25 regions (20 kept, the rarest
    share '<other>') with a few gaps."""
    rows = make_synthetic(800, 4, 7)
    rng = np.random.default_rng(7)
    weights = np.r_[np.full(20, 1.0), np.full(5, 0.02)]
    regions = rng.choice([f"r{i:02d}" for i in range(25)], len(rows), p=weights / weights.sum())
    gaps = rng.random(len(rows)) < 0.05
    rows.insert(0, "region", [None if gap else r for gap, r in zip(gaps, regions, strict=True)])
    path.parent.mkdir(parents=True, exist_ok=True)
    rows.to_csv(path, index=False)


@pytest.fixture(scope="module")
def retrained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A project after `epochline retrain`: its card file, and the champion's run id."""
    project = copy_project(tmp_path_factory.mktemp("card") / "project", PARAMS)
    _table(project / TABLE)
    commit(project, "a table with categories")
    run([EPOCHLINE, "retrain"], project)
    return project, trained_run(project).info.run_id


def test_the_card_opens_with_the_slices_table(retrained: tuple[Path, str]) -> None:
    project, _ = retrained
    text = (project / CARD).read_text()
    lines = text.splitlines()
    assert lines[0] == "# Model card"
    first_section = next(line for line in lines if line.startswith("## "))
    assert first_section == "## Slices"
    table = [line for line in lines[: lines.index("## Data")] if line.startswith("| ")]
    assert table[0].startswith("| feature | slice | rows |") and len(table) == 1 + 10
    # Every slice of the capped column is listed, '<other>' and '<missing>' among them.
    region = [line for line in lines if line.startswith("| `region` |")]
    assert any("`<other>`" in line for line in region)
    assert any("`<missing>`" in line for line in region)
    assert "`region`: 20 categories kept" in text
    assert "fewer than 30 test rows" in text  # the rare regions' slices are flagged
    for absent in ("mlflow.db", "sqlite", "run `", "commit `"):
        assert absent not in text, absent


def test_the_run_holds_the_card_with_its_lineage(
    retrained: tuple[Path, str], tmp_path: Path
) -> None:
    project, run_id = retrained
    file_text = (project / CARD).read_text()
    logged = store(project).download_artifacts(run_id, "model_card.md", str(tmp_path))
    text = Path(logged).read_text()
    assert text.startswith(file_text)
    assert f"epochline reproduce {run_id}" in text[len(file_text) :]


def test_epochline_card_of_the_run_and_of_the_champion(retrained: tuple[Path, str]) -> None:
    project, run_id = retrained
    file_text = (project / CARD).read_text()
    head = run(["git", "rev-parse", "HEAD"], project).stdout.strip()

    of_run = run([EPOCHLINE, "card", run_id], project).stdout
    assert of_run.startswith(file_text)  # the same card, the run's part added
    added = of_run[len(file_text) :]
    assert "## The run" in added and f"`{run_id}`" in added and head in added
    assert "## Decision record" not in added

    out = project / "champion.md"
    champion = run([EPOCHLINE, "card", "@champion", "--output", str(out)], project).stdout
    assert out.read_text() == champion
    assert champion.startswith(file_text)
    record = champion[champion.index("## Decision record") :]
    assert "version 1 (aliases: challenger, champion)" in record
    assert "| decision | `promoted` |" in record and "| reason |" in record


def test_the_card_is_the_same_bytes_from_a_fresh_store(retrained: tuple[Path, str]) -> None:
    project, _ = retrained
    before = (project / CARD).read_bytes()
    fresh = f"sqlite:///{project / 'fresh.db'}"
    run(["dvc", "repro", "--force"], project, MLFLOW_TRACKING_URI=fresh)
    assert (project / CARD).read_bytes() == before


def test_an_unknown_target_is_one_line(retrained: tuple[Path, str]) -> None:
    project, _ = retrained
    done = run([EPOCHLINE, "card", "models:/nope/7"], project, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "error: card: models:/nope/7: no such registered version" in done.stderr


def test_a_seeds_parent_cards_its_first_seeds_model(retrained: tuple[Path, str]) -> None:
    project, _ = retrained
    run([EPOCHLINE, "seeds", "2"], project)  # a parent and two children; the workspace kept
    client = store(project)
    parent = next(r for r in client.search_runs([_experiment(project)])
                  if "epochline.seeds" in r.data.tags)  # fmt: skip
    first = seeds.children(client, parent.info.run_id)[0]
    done = run([EPOCHLINE, "card", parent.info.run_id], project)
    assert f"- a seeds parent: run `{parent.info.run_name}`" in done.stdout
    assert f"rebuild: `epochline reproduce {first.info.run_id}`" in done.stdout
    assert "## Slices\n\nThe 10 of" in done.stdout  # its rows are the workspace's: sliced


def test_a_run_with_other_preprocessing_has_no_slices_and_no_test_metrics(
    retrained: tuple[Path, str],
) -> None:
    """train alone (evaluate never ran: no test_* metrics) with data.max_categories 5."""
    project, _ = retrained
    with workspace_restored(project):
        set_params(project, {"data": {"max_categories": 5}})
        run(["dvc", "repro", "train"], project)
        other = trained_run(project).info.run_id
    done = run([EPOCHLINE, "card", other], project)
    assert "Traceback" not in done.stderr
    assert (
        "Slices could not be computed: the run's preprocessing (data.max_categories 5) is not "
        "the workspace's (20)."
    ) in done.stdout
    assert "accuracy **-**, ROC AUC **-**" in done.stdout
    assert f"rebuild: `epochline reproduce {other}`" in done.stdout


def _experiment(project: Path) -> str:
    found = store(project).get_experiment_by_name("epochline")
    assert found is not None
    return found.experiment_id


def test_the_champions_card_keeps_its_own_slices_when_new_data_arrived(
    retrained: tuple[Path, str],
) -> None:
    """New labelled rows since the champion was trained: the workspace's test rows are not
    its test rows any more, so its card is the one evaluate logged for it, run part anew."""
    project, run_id = retrained
    logged = (project / CARD).read_text()
    batch = project / "data/incoming/batch-0001.csv"
    rows = pd.read_csv(project / TABLE).sample(200, random_state=3)
    rows["x0"] = rows["x0"] + 0.5  # new rows, not copies: other content, other digest
    try:
        with workspace_restored(project):
            batch.parent.mkdir(parents=True, exist_ok=True)
            rows.to_csv(batch, index=False)
            run(["dvc", "repro"], project)
            assert (project / CARD).read_text() != logged  # the workspace moved on
            card = run([EPOCHLINE, "card", "@champion"], project).stdout
    finally:
        batch.unlink(missing_ok=True)
    assert card.startswith(logged)  # its own slices, on its own test rows
    added = card[len(logged) :]
    assert "this card is the one evaluate logged for the run (artifact `model_card.md`)" in added
    assert f"rebuild: `epochline reproduce {run_id}`" in added and "## Decision record" in added
