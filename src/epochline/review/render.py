"""A comparison report as a pull-request comment reads it (Markdown), as a page (HTML, its
plots inlined: one file to attach or open offline) and as data (JSON); and its plots."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matplotlib.figure import Figure
from sklearn import metrics as skm

from epochline.core.files import write_json, write_with

if TYPE_CHECKING:
    from epochline.review.compare import Shared

PLOTS = ("curves.png", "roc.png")
COLOURS = {"a": "tab:blue", "b": "tab:orange"}
HTML_STYLE = """body{font:15px/1.45 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;
max-width:980px;margin:24px auto;padding:0 16px;color:#1f2328}table{border-collapse:collapse;
margin:8px 0 16px}th,td{border:1px solid #d0d7de;padding:4px 10px;text-align:left}
th{background:#f6f8fa}code{background:#f6f8fa;padding:1px 4px;border-radius:4px}
img{max-width:100%}h1{font-size:1.6em}h2{border-bottom:1px solid #d0d7de}"""


def _number(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def _side_cell(side: dict[str, Any]) -> str:
    return f"`{side['target']}` ({side['how']})"


def _head(report: dict[str, Any]) -> list[str]:
    a, b = report["a"], report["b"]
    diff = report["differences"]
    same_data = "same" if diff["data_digest"]["a"] == diff["data_digest"]["b"] else "differs"
    return [
        f"# Compare: `{a['target']}` (A) vs `{b['target']}` (B)", "",
        f"**Verdict.** {report['verdict']['line']}", "",
        "| | A | B |", "|---|---|---|",
        f"| target | {_side_cell(a)} | {_side_cell(b)} |",
        f"| run | {a['run_name']} `{a['run_id']}` | {b['run_name']} `{b['run_id']}` |",
        f"| model | `{a['model_uri']}` | `{b['model_uri']}` |",
        f"| code commit | `{diff['git_commit']['a'][:12]}` | `{diff['git_commit']['b'][:12]}` |",
        f"| data digest ({same_data}) | `{diff['data_digest']['a'][:12]}` "
        f"| `{diff['data_digest']['b'][:12]}` |",
        "",
    ]  # fmt: skip


def _what_differs(report: dict[str, Any]) -> list[str]:
    diff = report["differences"]
    lines = ["## What differs", ""]
    if diff["params"]:
        lines += ["| param | A | B |", "|---|---|---|"]
        lines += [f"| `{p['key']}` | {p['a']} | {p['b']} |" for p in diff["params"]]
    else:
        lines.append("Params: the same.")
    packages = diff["packages"]
    changed = [p for p in packages if p["a"] != p["b"]]
    if changed:
        lines += ["", "| package | A | B |", "|---|---|---|"]
        lines += [f"| {p['name']} | {p['a']} | {p['b']} |" for p in changed]
    else:
        listed = ", ".join(f"{p['name']} {p['a']}" for p in packages)
        lines += ["", f"Packages: the same ({listed})."]
    return [*lines, ""]


def _spread_cell(value: float, spread: dict[str, Any] | None, name: str) -> str:
    if not spread or name not in spread:
        return _number(value)
    s = spread[name]
    return f"{s['mean']:.4f} ± {s['std']:.4f} [{s['min']:.4f}, {s['max']:.4f}]"


def _shared_column(report: dict[str, Any]) -> bool:
    """Whether B - A on the shared rows differs from the store's (other test rows, or a
    seeds side), so that the table shows the difference the interval is about."""
    return any(
        r["shared_difference"] is not None and abs(r["shared_difference"] - r["difference"]) > 5e-5
        for r in report["metrics"]
    )


def _intro(report: dict[str, Any], shared_column: bool) -> str:
    shared, a, b = report["shared_rows"], report["a"], report["b"]
    over = "means over seeds ± std [min, max]; " if a["spread"] or b["spread"] else ""
    pair = " (each side's first seed)" if a["spread"] or b["spread"] else ""
    logged = f"As logged in each run ({over}B - A above 0: B higher)."
    if not shared["n"]:
        return f"{logged} No intervals: {shared['reason']}."
    where = (
        "; *on the shared rows*: B - A there, which the interval is about"
        if shared_column
        else "; the runs were tested on these rows"
    )
    return (
        f"{logged} Intervals: paired bootstrap of the two models{pair} on the {shared['n']} "
        f"test rows of this workspace, held out from both{where}."
    )


def _metrics(report: dict[str, Any]) -> list[str]:
    a, b, level = report["a"], report["b"], f"{report['confidence']:.0%}"
    column = _shared_column(report)
    extra = (" on the shared rows |", "---|") if column else ("", "")
    lines = ["## Test metrics", "", _intro(report, column), "",
             f"| metric | A | B | B - A |{extra[0]} {level} interval of B - A | |",
             f"|---|---|---|---|{extra[1]}---|---|"]  # fmt: skip
    for r in report["metrics"]:
        note = "lower is better" if r["lower_is_better"] else ""
        if r["within_seed_spread"]:
            note = ", ".join(filter(None, [note, "inside the seed spread"]))
        interval = f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]" if r["ci_low"] is not None else "-"
        on_shared = f" {_number(r['shared_difference'], signed=True)} |" if column else ""
        lines.append(
            f"| {r['name']} | {_spread_cell(r['a'], a['spread'], r['name'])} "
            f"| {_spread_cell(r['b'], b['spread'], r['name'])} "
            f"| {_number(r['difference'], signed=True)} |{on_shared} {interval} | {note} |"
        )
    return [*lines, ""]


def markdown(report: dict[str, Any]) -> str:
    plots = ["## Curves", "", "![loss and accuracy per epoch, A and B](curves.png)", "",
             "![ROC on the shared test rows](roc.png)", ""]  # fmt: skip
    return "\n".join([*_head(report), *_what_differs(report), *_metrics(report), *plots])


def to_html(text: str, title: str, folder: Path) -> str:
    """Markdown to one HTML page, its images (files in `folder`) inlined as data URIs."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark").enable("table").render(text)
    for name in PLOTS:
        if (folder / name).exists():
            data = base64.b64encode((folder / name).read_bytes()).decode()
            body = body.replace(f'src="{name}"', f'src="data:image/png;base64,{data}"')
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{HTML_STYLE}</style></head><body>{body}</body></html>\n"
    )


def curves_figure(curves: dict[str, dict[str, list[float]]]) -> Figure:
    fig = Figure(figsize=(10, 3.6))
    loss, accuracy = fig.subplots(1, 2)
    for side, found in curves.items():
        for key, axis in (("loss", loss), ("accuracy", accuracy)):
            for part, style in (("train", "--"), ("val", "-")):
                values = found.get(f"{part}_{key}", [])
                axis.plot(range(1, len(values) + 1), values, style, color=COLOURS[side],
                          label=f"{side.upper()} {part}")  # fmt: skip
    loss.set(xlabel="epoch", ylabel="loss", title="Loss per epoch")
    accuracy.set(xlabel="epoch", ylabel="accuracy", title="Accuracy per epoch")
    accuracy.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    return fig


def roc_figure(shared: Shared) -> Figure:
    fig = Figure(figsize=(4.5, 4.5))
    ax = fig.subplots()
    if shared.y is not None and shared.a is not None and shared.b is not None:
        for side, scores in (("a", shared.a), ("b", shared.b)):
            fpr, tpr, _ = skm.roc_curve(shared.y, scores.probability)
            auc = skm.roc_auc_score(shared.y, scores.probability)
            ax.plot(fpr, tpr, color=COLOURS[side], label=f"{side.upper()} AUC {auc:.4f}")
        ax.legend(loc="lower right")
    else:
        ax.text(0.5, 0.5, "no shared test rows", ha="center")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (shared rows)")
    fig.tight_layout()
    return fig


def _save(fig: Figure, path: Path) -> None:
    write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))


def write(report: dict[str, Any], shared: Shared, fmt: str, out: Path) -> Path:
    """The plots, report.json and the report in `fmt` into `out`; the report's path."""
    out.mkdir(parents=True, exist_ok=True)
    figures = (curves_figure(report["curves"]), roc_figure(shared))
    for name, fig in zip(PLOTS, figures, strict=True):
        _save(fig, out / name)
    path = out / f"report.{fmt}"
    # report.json always: the numbers for a script beside the page a person reads.
    write_json(report, out / "report.json", sort_keys=False)
    if fmt == "json":
        return path
    text = markdown(report)
    if fmt == "html":
        text = to_html(text, f"compare {report['a']['target']} vs {report['b']['target']}", out)
    write_with(path, lambda tmp: tmp.write_text(text))
    return path
