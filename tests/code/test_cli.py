"""The one error policy, as the `epochline` command applies it in-process: the exit code says
what kind of error, one line says what (no traceback), and a bug keeps its traceback."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from mlflow.exceptions import MlflowException
from typer.testing import CliRunner

from epochline.cli import app
from epochline.core import errors
from epochline.core.runner import guard
from epochline.retrain.lock import LockBusy, exclusive


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder with default params.yaml, the working directory, and its own store."""
    (tmp_path / "params.yaml").write_text("{}\n")
    monkeypatch.chdir(tmp_path)
    for name in (
        "MLFLOW_TRACKING_URI",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
        "MLFLOW_HTTP_REQUEST_TIMEOUT",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR",
    ):
        monkeypatch.delenv(name, raising=False)  # tests/conftest.py puts back what the CLI sets
    return tmp_path


def _lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


@pytest.mark.parametrize(
    "args",
    [["retrain", "--bogus"], ["rollback"], ["predict", "--input", "x.csv"], ["no-such-command"]],
    ids=["unknown-option", "missing-option", "missing-output", "unknown-command"],
)
def test_a_usage_error_exits_2(args: list[str]) -> None:
    done = CliRunner().invoke(app, args)
    assert done.exit_code == errors.USER_ERROR, done.output
    assert "Usage:" in done.stderr


def test_a_user_error_exits_2_with_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no params.yaml here
    done = CliRunner().invoke(app, ["rollback", "--reason", "bad"])
    assert done.exit_code == errors.USER_ERROR
    assert _lines(done.stderr) == [
        "error: params.yaml: params file not found; run from the repo root"
    ]
    assert done.stdout == ""


def test_bad_params_exit_2_naming_the_key(project: Path) -> None:
    (project / "params.yaml").write_text("retrain:\n  min_delta: 2\n")
    done = CliRunner().invoke(app, ["retrain"])
    assert done.exit_code == errors.USER_ERROR
    (line,) = _lines(done.stderr)
    assert line.startswith("error: params.yaml: retrain.min_delta = 2 ")


def test_a_retrain_holding_the_lock_makes_75_and_a_skipped_line(project: Path) -> None:
    with exclusive(project / ".epochline-retrain.lock"):
        done = CliRunner().invoke(app, ["rollback", "--reason", "bad"])
    assert done.exit_code == errors.LOCK_BUSY == LockBusy.exit_code
    (line,) = _lines(done.stderr)
    assert line.startswith("skipped: another retrain is running (pid ")
    assert "error" not in done.stderr.lower()


def test_a_failed_rollback_exits_1_with_one_error_line(project: Path) -> None:
    before = mlflow.get_tracking_uri()
    try:
        done = CliRunner().invoke(app, ["rollback", "--reason", "bad"])
    finally:
        mlflow.set_tracking_uri(before)
    assert done.exit_code == errors.FAILED
    assert _lines(done.stderr)[-1] == (
        "error: rollback of epochline-classifier: needs both a champion and a "
        "previous-champion; nothing changed"
    )
    assert "Traceback" not in done.output


def _raise(exc: BaseException) -> None:
    raise exc


@pytest.mark.parametrize(
    ("exc", "code", "line"),
    [
        (errors.UserError("params.yaml: bad"), 2, "error: params.yaml: bad"),
        (
            errors.Failed("git commit failed: no identity"),
            1,
            "error: git commit failed: no identity",
        ),
        (LockBusy("another retrain is running"), 75, "skipped: another retrain is running"),
        (KeyboardInterrupt(), 130, "error: interrupted"),
    ],
    ids=["user-error", "failure", "lock-busy", "ctrl-c"],
)
def test_guard_gives_each_kind_of_error_its_code_and_line(
    exc: BaseException, code: int, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        guard(lambda: _raise(exc))
    assert stopped.value.code == code
    assert _lines(capsys.readouterr().err) == [line]


def test_a_failed_service_call_is_one_line_naming_the_store(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        guard(lambda: _raise(MlflowException("Registered Model with name=x not found\nmore")))
    assert stopped.value.code == errors.FAILED
    (line,) = _lines(capsys.readouterr().err)
    assert line.startswith("error: MLflow at sqlite:///") and line.endswith("name=x not found")


def test_sigterm_and_bugs_pass_through(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:  # what handle_sigterm raises
        guard(lambda: _raise(SystemExit(errors.TERMINATED)))
    assert stopped.value.code == 143
    with pytest.raises(ZeroDivisionError):  # a bug: its traceback is what a developer needs
        guard(lambda: 1 / 0)
    assert capsys.readouterr().err == ""
    assert guard(lambda: 7) == 7


def test_first_line_of_an_exception() -> None:
    assert errors.first_line(ValueError("one\ntwo")) == "one"
    assert errors.first_line(ValueError()) == "ValueError"
    assert errors.first_line(ValueError("x" * 300)) == "x" * 200
    assert errors.first_line(ValueError("abcdef"), limit=3) == "abc"
