"""The Markdown tables of a suite run, from its JSON."""

from __future__ import annotations

from statistics import median
from typing import Any

from epochline.evaluation.baselines import FIT_ROWS

STAGES = ("load", "normalize", "split", "train", "evaluate")


def _ratio(value: float | None) -> str:
    return "" if value is None else f" ({value:.2f}x)"


def _stage_rows(size: dict[str, Any]) -> list[str]:
    rows = []
    for name in STAGES:
        s, f, r = size["stages"][name], size["floors"].get(name), size["ratios"].get(name, {})
        floor = f"{f['wall_s']:.2f} / {f['cpu_s']:.2f} / {f['peak_rss_mb']:.0f}" if f else "—"
        rows.append(
            f"| {name} | {s['wall_s']:.2f}{_ratio(r.get('wall'))} | {s['cpu_s']:.2f}"
            f"{_ratio(r.get('cpu'))} | {s['peak_rss_mb']:.0f}{_ratio(r.get('rss'))} | "
            f"{size['rss_per_table'][name]:.2f} | {floor} |"
        )
    return rows


def _end_to_end(e2e: dict[str, Any]) -> str:
    floor = e2e["floor"]
    text = (
        f"End to end: one-process floor {floor['wall_s']:.2f} s (CPU {floor['cpu_s']:.2f} s, "
        f"RSS {floor['peak_rss_mb']:.0f} MB); stages one by one {e2e['stages_sum_s']:.2f} s "
        f"(**{e2e['stages_ratio']:.2f}x**)"
    )
    text += f"; with fast numerics {e2e['stages_fast_s']:.2f} s"
    plain = e2e["plain"]
    text += (f". The same work in one process without MLflow {plain['wall_s']:.2f} s: stages "
             f"**{e2e['plain_ratio']:.2f}x** (target ≤ 2)")  # fmt: skip
    if e2e["dvc_repro_s"] is None:
        return text + "; `dvc repro --force` not run (--no-repro)."
    return text + f", `dvc repro --force` {e2e['dvc_repro_s']:.2f} s (**{e2e['dvc_ratio']:.2f}x**)."


def _card(card: dict[str, Any]) -> str:
    return (
        f"evaluate's model card alone, on {card['rows']:,} test rows: slices "
        f"({card['features']} features, {card['slices']} slices) {card['slices_s']:.2f} s, "
        f"bootstrap intervals {card['intervals_s']:.2f} s (what it computes from the rows)."
    )


def size_section(size: dict[str, Any]) -> str:
    e2e, dvc = size["end_to_end"], size["dvc"]
    lines = [
        f"### {size['rows']:,} rows (table {size['table_mb']:.1f} MB in memory)",
        "",
        "| stage | wall s (÷ floor) | CPU s (÷ floor) | peak RSS MB (÷ floor) | RSS ÷ table "
        "| floor wall s / CPU s / RSS MB |",
        "|---|---|---|---|---|---|",
        *_stage_rows(size),
        "",
        f"Portable numerics (the default) against fast ones: train "
        f"{size['stages']['train']['wall_s']:.2f} s against {size['train_fast']['wall_s']:.2f} s "
        f"(**{size['portable_cost']:.2f}x**).",
        "",
        f"evaluate's yardsticks (majority class, logistic regression on at most "
        f"{FIT_ROWS:,} training rows) alone: {size['yardsticks']['wall_s']:.2f} s "
        f"(the stage: {size['stages']['evaluate']['wall_s']:.2f} s).",
        "",
        _card(size["card"]),
        "",
        _end_to_end(e2e),
        "",
        f"No-op `dvc repro`: {dvc['noop']['wall_s']:.2f} s; DVC's own no-op on the same files "
        f"(one `cmd: true` stage with the same outs) {dvc['noop_minimal']['wall_s']:.2f} s: "
        f"**{dvc['noop_ratio']:.2f}x**; `dvc status` {dvc['status']['wall_s']:.2f} s "
        f"({dvc['noop_vs_status']:.2f}x).",
        "",
    ]
    return "\n".join(lines)


def _walls(walls: list[float]) -> str:
    each = ", ".join(f"{w:.2f}" for w in walls)
    return f"**{median(walls):.2f}**" + (f" (median of {each})" if len(walls) > 1 else "")


def default_section(d: dict[str, Any]) -> str:
    exps, stages, imports = d["experiments"], d["stages"], d["imports"]
    lines = [
        f"### The default size: params.yaml as committed ({d['rows']:,} synthetic rows)",
        "",
        "| what | wall s | target |",
        "|---|---|---|",
        *(f"| `dvc exp run -S train.lr=…` (train + evaluate, a new run), {n} numerics | "
          f"{_walls(w)} | ≤ 6 |" for n, w in exps.items()),
        f"| `dvc repro --force`, all five stages, a fresh store | "
        f"**{d['repro_force']['wall_s']:.2f}** | ≤ 10 |",
        f"| DVC alone: a no-op `dvc exp run` | {d['noop_exp']['wall_s']:.2f} | |",
        "",
        "| stage (a new run) | wall s | CPU s | its libraries' import alone¹, s | ÷ import |",
        "|---|---|---|---|---|",
    ]  # fmt: skip
    for name in STAGES:
        s, i = stages[name], imports[name]
        lines.append(f"| {name} | {s['wall_s']:.2f} | {s['cpu_s']:.2f} | {i['wall_s']:.2f} | "
                     f"{s['wall_s'] / i['wall_s']:.2f}x |")  # fmt: skip
    note = ("¹ `python -c 'import …'` of what the stage needs (pandas and pyarrow; train adds "
            "torch, torch._dynamo, MLflow and its SQL store; evaluate torch, MLflow, its SQL "
            "store, scikit-learn and matplotlib), without the cycle collector or the interpreter's "
            "teardown: the least a stage that uses them can take.")  # fmt: skip
    return "\n".join([*lines, "", note, ""])


def loop_section(loop: list[dict[str, Any]], rounds: int) -> str:
    if not loop:
        return ""
    first = loop[0]
    lines = [
        f"### Training loop ({first['rows']:,} synthetic rows, 90 % trained, "
        f"best of 3 windows of whole epochs, raw and fit alternating, each kind's best of "
        f"{rounds} round{'s' if rounds > 1 else ''}, {first['raw']['device']})",
        "",
        "| numerics (torch threads) | batch | raw loop samples/s | `model.fit` samples/s "
        "| fit ÷ raw (target ≥ 0.9) | fit ÷ fast fit |",
        "|---|---|---|---|---|---|",
    ]
    fast = {e["batch_size"]: e["fit"]["samples_per_s"] for e in loop if e["numerics"] == "fast"}
    for e in loop:
        versus_fast = e["fit"]["samples_per_s"] / fast[e["batch_size"]]
        lines.append(
            f"| {e['numerics']} ({e['fit']['threads']}) | {e['batch_size']} | "
            f"{e['raw']['samples_per_s']:,.0f} | {e['fit']['samples_per_s']:,.0f} | "
            f"{e['ratio']:.2f} | {versus_fast:.2f} |"
        )
    return "\n".join([*lines, ""])


def markdown(result: dict[str, Any]) -> str:
    env = result["environment"]
    s = env["settings"]
    head = [
        "## epochline benchmark",
        "",
        f"{env['date_utc']} · commit {env['commit']} · {env['cpu_count']} CPUs "
        f"({env['cpu_model']}) · device {env['device']} · Python {env['python']}, "
        f"torch {env['torch']}, mlflow {env['mlflow']}, dvc {env['dvc']} · load average "
        f"{env['load_average']:.2f} at the start, {env.get('load_average_end', 0):.2f} at the end",
        "",
    ]
    sized = [
        f"Sized tables: {s['n_features']} synthetic features, train.epochs {s['epochs']}, "
        f"train.batch_size {s['batch_size']}"
        f"{', train.device ' + env['device'] if env['train_device_param'] else ''}. "
        "Ratios are to the floor (the same work, simplest way, same run); "
        "targets: data stages ≤ 1.5x wall, RSS ÷ table ≤ 2.5 (at scale).",
        "",
    ]
    body = [default_section(result["default"])] if "default" in result else []
    body += (sized if result["sizes"] else []) + [size_section(x) for x in result["sizes"]]
    loop = loop_section(result.get("training_loop", []), s.get("loop_rounds", 1))
    return "\n".join([*head, *body, loop])
