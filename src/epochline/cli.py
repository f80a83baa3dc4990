"""The `epochline` command: what is not a DVC stage (retraining and serving helpers)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from epochline.core.runner import guard, handle_sigterm, setup_logging

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
log = logging.getLogger("epochline.cli")


@app.callback()
def main() -> None:
    """epochline: reproducible, tracked training with DVC, PyTorch and MLflow.

    Exit codes: 0 done; 1 failure (a stage, tool, service or retrain failed);
    2 user error (params, data, arguments); 75 skipped: a retrain holds the lock;
    130 stopped by Ctrl-C; 143 stopped by SIGTERM.
    """
    setup_logging()
    handle_sigterm()


@app.command()
def repro() -> None:
    """Run the pipeline (dvc repro), then summarise: test metrics, the MLflow run, where to look.

    Exit 0: done; 1: a stage failed (its error line is above); 2: bad params.
    """
    from epochline.pipeline import repro_with_summary

    typer.echo(guard(repro_with_summary))


@app.command()
def retrain(
    commit: Annotated[bool, typer.Option(help="git-commit dvc.lock, params.yaml, reports")] = False,
    push: Annotated[bool, typer.Option(help="dvc push to the configured DVC remote")] = False,
) -> None:
    """Run the pipeline on current data; register the model; promote it only if better.

    Exit 0: done (promoted, kept or nothing new); 1: failed (a stage, store, git);
    2: bad params or arguments; 75: skipped, another retrain is running.
    """
    from epochline.retrain.loop import retrain as run_retrain

    outcome = guard(lambda: run_retrain(commit=commit, push=push))
    typer.echo(outcome.summary)


@app.command()
def rollback(
    reason: Annotated[str, typer.Option(help="why, recorded on the model versions")],
) -> None:
    """Move alias champion back to previous-champion, recording why.

    Exit 0: done; 1: no previous-champion, or the store failed;
    75: skipped, a retrain is running.
    """
    from epochline.retrain.loop import rollback as run_rollback

    typer.echo(guard(lambda: run_rollback(reason)))


@app.command()
def reproduce(
    target: Annotated[
        str, typer.Argument(help="run id, runs:/ID, models:/NAME/VERSION or models:/NAME@ALIAS")
    ],
    keep: Annotated[
        Path | None, typer.Option(help="leave the rebuilt worktree here (a new or empty folder)")
    ] = None,
    tolerance: Annotated[
        float | None,
        typer.Option(min=0, help="EQUIVALENT: largest metric difference (default 0.01)"),
    ] = None,
) -> None:
    """Rebuild a run in a temporary git worktree; compare model and metrics.

    From its commit, params.yaml, dvc.lock and data, with a throwaway store.
    Exit 0: IDENTICAL, or EQUIVALENT where the bits cannot match (a GPU, fast
    numerics on another CPU) and every metric is within --tolerance; 1: DIFFERENT
    (the first difference is shown); 2: it cannot be rebuilt (dirty tree, data
    gone, commit gone).
    """
    from epochline.reproduce import reproduce as run_reproduce

    verdict = guard(lambda: run_reproduce(target, keep, tolerance))
    typer.echo(verdict.text)
    raise typer.Exit(verdict.code)


@app.command("new-batch")
def new_batch(
    rows: Annotated[int, typer.Option(min=1, help="labelled rows to write")] = 200,
    drift: Annotated[float, typer.Option(help="shift every feature by this many std devs")] = 0.0,
    seed: Annotated[int | None, typer.Option(help="batch seed; default: the batch number")] = None,
) -> None:
    """Write a new labelled synthetic batch into the incoming folder (data.incoming_dir)."""
    from epochline.core.params import load_params
    from epochline.data.batches import write_batch

    path = guard(lambda: write_batch(load_params().data, rows, drift, seed))
    typer.echo(f"new-batch: wrote {rows} rows to {path}")


@app.command()
def baselines() -> None:
    """Compare the network with yardsticks on the same split: the majority class and a
    scikit-learn logistic regression fitted on the same training rows (run after repro)."""
    from epochline.core.params import load_params
    from epochline.evaluation.baselines import against_pipeline

    typer.echo(guard(lambda: against_pipeline(load_params())))


@app.command()
def predict(
    input: Annotated[Path, typer.Option("--input", help="CSV or Parquet of raw feature rows")],
    output: Annotated[Path, typer.Option("--output", help="CSV to write predictions to")],
    model: Annotated[
        str | None, typer.Option(help="model URI; default models:/<registered name>@champion")
    ] = None,
) -> None:
    """Score a file of raw rows with the champion (or --model) and write probability, label."""
    from epochline.serving.predict import predict_file

    count, uri = guard(lambda: predict_file(input, output, model))
    typer.echo(f"predict: scored {count} rows with {uri} -> {output}")


@app.command()
def compare(
    a: Annotated[
        str,
        typer.Argument(
            help="the reference: run id, models:/NAME/VERSION, @ALIAS, "
            "a git revision or branch, a DVC experiment name"
        ),
    ],
    b: Annotated[str, typer.Argument(help="the one judged against A (same forms)")],
    format: Annotated[
        str, typer.Option("--format", help="md, html or json: the report written and printed")
    ] = "md",
    out: Annotated[Path, typer.Option(help="folder for the report and its plots")] = Path(
        "reports/compare"
    ),
) -> None:
    """Compare two models: what differs, every test metric with its paired bootstrap interval
    on the shared test rows, curves and ROC overlaid, and retrain's verdict for B over A.

    Exit 0: the report is written; 1: the store failed; 2: a target does not exist here.
    """
    from epochline.review.compare import compare_command

    typer.echo(guard(lambda: compare_command(a, b, format, out)))


@app.command()
def seeds(
    n: Annotated[int, typer.Argument(min=2, help="how many seeds: train.seed, train.seed+1, …")],
) -> None:
    """Train the current params with N seeds: one parent MLflow run with mean, std, min and
    max of every test metric, the N runs its children.

    Exit 0: done; 1: a stage or the store failed; 2: bad params.
    """
    from epochline.review.seeds import run_seeds

    typer.echo(guard(lambda: run_seeds(n)))


@app.command()
def card(
    target: Annotated[
        str | None,
        typer.Argument(
            help="run id, runs:/ID, models:/NAME/VERSION or @ALIAS; default: the pipeline's model"
        ),
    ] = None,
    output: Annotated[Path | None, typer.Option(help="write the card here too")] = None,
) -> None:
    """Print a model card: slices, data, training, evaluation, limits, lineage, decision."""
    from epochline.review.card import card_command

    typer.echo(guard(lambda: card_command(target, output)))


@app.command()
def history(
    at: Annotated[
        str | None,
        typer.Option(
            help="ISO time (2026-03-03T12:00, UTC unless it says): which version "
            "was champion then, and why"
        ),
    ] = None,
) -> None:
    """The champion's timeline: every alias move (promote, rollback, repair) with when, from,
    to, by whom and why. Exit 0: shown; 1: --at on a registry with no move on record, or
    the store failed; 2: --at is not a time, or no such registered model."""
    from epochline.review.history import history_command

    typer.echo(guard(lambda: history_command(at)))
