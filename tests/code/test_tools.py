"""run_tool: a failed tool's own first error, whole, as one line."""

from __future__ import annotations

import sys

import pytest

from epochline.tools import ToolFailed, run_tool

# What DVC 3.67 prints when another repro holds the stage's outputs.
BUSY = """\
ERROR: failed to reproduce 'load': '/p/data/schema.json' is busy, it is being blocked by:
  (PID 1932): /venv/bin/dvc repro

If there are no processes with such PIDs, you can manually remove '/p/.dvc/tmp/rwlock'
"""


def _tool(output: str, code: int) -> list[str]:
    script = f"import sys; sys.stdout.write({output!r}); sys.exit({code})"
    return [sys.executable, "-c", script]


def test_an_error_continued_on_indented_lines_is_shown_whole() -> None:
    with pytest.raises(ToolFailed) as failed:
        run_tool(_tool(BUSY, 1), "pipeline (dvc repro)")
    assert str(failed.value) == (
        "pipeline (dvc repro) failed: failed to reproduce 'load': '/p/data/schema.json' is "
        "busy, it is being blocked by: (PID 1932): /venv/bin/dvc repro"
    )


def test_the_first_error_line_and_no_more() -> None:
    output = "working\nerror: first thing\n  not a continuation\nERROR: second\n"
    with pytest.raises(ToolFailed, match=r"^git failed: first thing$"):
        run_tool(_tool(output, 2), "git")


def test_a_silent_failure_names_the_exit_code() -> None:
    with pytest.raises(ToolFailed, match=r"^git failed: exited 3$"):
        run_tool(_tool("", 3), "git")


def test_success_passes_the_output_through_less_dropped_lines(
    capfd: pytest.CaptureFixture[str],
) -> None:
    run_tool(_tool("kept\ndropped\n", 0), "tool", drop=("dropped",))
    assert capfd.readouterr().err == "kept\n"


# What DVC 3.67 prints after a stage's own error line when that stage exits non-zero.
STAGE_FAILED = """\
error: data/incoming/batch-0001.csv: column 'x3' row 6: 'n.a.' is not a number
ERROR: failed to reproduce 'load': failed to run: python -m epochline.stages.load, exited with {}
"""


@pytest.mark.parametrize(("stage", "code"), [(2, 2), (1, 1), (-9, 1)])
def test_a_stage_user_error_keeps_its_exit_code_through_dvc(stage: int, code: int) -> None:
    with pytest.raises(ToolFailed, match=r"^pipeline \(dvc repro\) failed: data/") as failed:
        run_tool(_tool(STAGE_FAILED.format(stage), 1), "pipeline (dvc repro)")
    assert failed.value.exit_code == code
