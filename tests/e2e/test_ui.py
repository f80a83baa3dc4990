"""What a person sees: the MLflow UI on a store that real `dvc repro` + `dvc exp run` filled,
and the `dvc plots show` page offline, in Debian's Chromium driven by Playwright.

Screenshots go to $EPOCHLINE_SCREENSHOTS (`make screenshots` sets reports/ui, which the
README shows), else to the test's temporary folder.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

from devtools.servers import serving
from tests.conftest import copy_project, missing_tool, run, tool_env

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.slow

# Found on PATH, as .ci/run looks for it before installing Debian's package.
CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    # The closed network otherwise fills the log with refused connections.
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
VIEWPORT = {"width": 1600, "height": 900}


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("EPOCHLINE_SCREENSHOTS") or tmp_path_factory.mktemp("shots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if CHROMIUM is None:
        missing_tool("chromium", "apt-get install chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A baseline run and an `lr=0.01` experiment, as the README's Experiments section makes."""
    project = copy_project(tmp_path_factory.mktemp("ui") / "project")
    summary = run(["epochline", "repro"], project).stdout
    run(["git", "commit", "-qam", "baseline results"], project)
    run(["dvc", "exp", "run", "-n", "lr-check", "-S", "train.lr=0.01"], project)
    return project, summary


@pytest.fixture(scope="module")
def ui(filled: tuple[Path, str]) -> Iterator[str]:
    project, _ = filled
    args = ["mlflow", "ui", "--backend-store-uri", f"sqlite:///{project / 'mlflow.db'}"]
    with serving([*args, "--host", "127.0.0.1", "--port"], project, tool_env(), "/") as base:
        yield base


def _page(browser: Browser, **options: object) -> Page:
    page = browser.new_page(**{"viewport": VIEWPORT, **options})
    page.set_default_timeout(30_000)
    return page


def _close_assistant(page: Page) -> None:
    """The assistant side panel, where it opens, takes a third of the page: close it."""
    panel = page.get_by_placeholder(re.compile("^Ask a question")).first
    try:
        panel.wait_for(timeout=5_000)
    except PlaywrightTimeout:
        return  # not opened this time
    page.get_by_role("button", name="Close").filter(visible=True).last.click()
    panel.wait_for(state="hidden")


def _run_names(page: Page) -> list[str]:
    names = page.locator("a[href*='/runs/']")
    names.first.wait_for()
    return [n.strip() for n in names.all_inner_texts() if n.strip()]


def test_the_link_epochline_prints_opens_the_training_runs(
    browser: Browser, ui: str, filled: tuple[Path, str], shots: Path
) -> None:
    _, summary = filled
    link = re.search(r"http://127\.0\.0\.1:5000(/#/experiments/\S+)", summary)
    assert link, summary
    page = _page(browser)
    page.goto(ui + link.group(1))
    page.get_by_text("Run Name", exact=True).wait_for()
    assert "/runs" in page.url and "workflowType=machine_learning" in page.url
    names = _run_names(page)
    assert "lr=0.01" in names, names
    assert any(re.fullmatch(r"baseline [0-9a-f]{7}", n) for n in names), names
    assert len(names) == 2, names

    # The description column holds each run's test metrics: no need to open the runs.
    _close_assistant(page)
    page.get_by_role("button", name="Columns").click()
    page.get_by_text("Description", exact=True).click()
    page.get_by_text("test_accuracy", exact=True).click()
    page.keyboard.press("Escape")
    described = page.get_by_text(re.compile(r"^accuracy 0\.\d{3} roc_auc 0\.\d{3}"))
    described.first.wait_for()
    assert described.count() == 2
    page.screenshot(path=shots / "runs-table.png")


def test_a_person_picks_model_training_once_and_experiments_open_on_runs(
    browser: Browser, ui: str
) -> None:
    page = _page(browser)
    page.goto(ui + "/#/experiments")
    page.get_by_text("Model training", exact=True).click()
    page.reload()
    link = page.get_by_test_id("experiment-list-item-link").filter(has_text="epochline")
    link.click()
    page.get_by_text("Run Name", exact=True).wait_for()
    assert "/runs" in page.url, page.url
    assert "lr=0.01" in _run_names(page)


def test_chart_view_overlays_val_loss_per_epoch_of_both_runs(
    browser: Browser, ui: str, filled: tuple[Path, str], shots: Path
) -> None:
    page = _page(browser)
    page.goto(ui + "/#/experiments/1/runs?workflowType=machine_learning")
    _close_assistant(page)
    page.locator("label:has(input[value=CHART])").click()
    page.get_by_placeholder("Search metric charts").fill("loss")
    cards = page.get_by_test_id("experiment-view-compare-runs-card")
    for metric in ("val_loss", "train_loss"):
        card = cards.filter(has=page.locator(f"h4[title={metric}]"))
        # A line per run over the steps (epochs), each named in the legend.
        card.get_by_text(f"lr=0.01 ({metric})", exact=True).wait_for()
        legend = card.get_by_text(re.compile(rf"^baseline [0-9a-f]{{7}} \({metric}\)$"))
        assert legend.count() == 1, card.inner_text()
        # The legend is the page's; the plot (axes, lines) may draw after it.
        card.get_by_text("Step", exact=True).wait_for()
        assert card.get_by_text("Step", exact=True).count() == 1
        card.locator(".scatterlayer .trace path.js-line").first.wait_for()
        assert card.locator(".scatterlayer .trace path.js-line").count() >= 2
    _close_assistant(page)  # it may open late
    page.screenshot(path=shots / "charts-loss.png")


def test_dvc_plots_show_renders_offline_with_labelled_axes(
    browser: Browser, filled: tuple[Path, str], shots: Path
) -> None:
    project, _ = filled
    run(["dvc", "plots", "show"], project)
    html = (project / "dvc_plots" / "index.html").read_text()
    assert "cdn.jsdelivr.net" not in html
    for label in ("loss (binary cross-entropy)", "false positive rate", "predicted class"):
        assert label in html, label
    page = _page(browser, offline=True)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto((project / "dvc_plots" / "index.html").as_uri())
    page.wait_for_function(
        "document.querySelectorAll('.vega-embed canvas, .vega-embed svg.marks').length >= 4"
    )
    assert [u for u in requests if not u.startswith("file:")] == []
    page.screenshot(path=shots / "dvc-plots.png", full_page=True)
    # The page is an output a person makes, not a file to commit.
    assert (
        run(["git", "check-ignore", "-q", "dvc_plots/index.html"], project, check=False).returncode
        == 0
    )


def _offline_page(browser: Browser, path: Path) -> tuple[Page, list[str]]:
    """`path` opened offline, with the requests it made: a report must need no network."""
    page = _page(browser, offline=True, viewport={"width": 1100, "height": 900})
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    return page, [u for u in requests if not u.startswith(("file:", "data:"))]


def test_the_compare_report_renders_as_one_offline_page(
    browser: Browser, filled: tuple[Path, str], shots: Path
) -> None:
    project, _ = filled
    run(["epochline", "compare", "HEAD", "lr-check", "--format", "html"], project)
    page, remote = _offline_page(browser, project / "reports/compare/report.html")

    assert remote == []
    verdict = page.locator("p", has_text="Verdict.").inner_text()
    assert verdict.startswith("Verdict. B over A by retrain's rule (accuracy): ")
    changed = page.locator("table").nth(1).locator("tbody tr").all_inner_texts()
    assert changed == ["train.lr\t0.003\t0.01"]
    metrics = page.locator("table").nth(2).locator("tbody tr td:first-child").all_inner_texts()
    assert metrics[:6] == ["accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"]
    # Both plots are inlined and decoded: a page to attach, open offline or screenshot.
    widths = page.locator("img").evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
    assert len(widths) == 2 and min(widths) > 300
    page.screenshot(path=shots / "compare-report.png", full_page=True)


def test_the_model_card_opens_with_the_slices_table(
    browser: Browser, filled: tuple[Path, str], shots: Path, tmp_path: Path
) -> None:
    from epochline.review.render import to_html

    project, _ = filled
    card = project / "reports/model_card.md"
    page_file = tmp_path / "model_card.html"
    page_file.write_text(to_html(card.read_text(), "model card", card.parent))
    page, remote = _offline_page(browser, page_file)

    assert remote == []
    assert page.locator("h2").first.inner_text() == "Slices"
    first_table = page.locator("table").first
    head = first_table.locator("thead th").all_inner_texts()
    assert head[:4] == ["feature", "slice", "rows", "positives"]
    assert first_table.locator("tbody tr").count() >= 5
    page.screenshot(path=shots / "model-card.png")
