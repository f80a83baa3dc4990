"""The `epochline` command: what is not a DVC stage."""

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.callback()
def main() -> None:
    """epochline: reproducible, tracked training with DVC, PyTorch and MLflow."""
