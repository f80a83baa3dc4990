"""The retrain schedulers in deploy/, checked by the tools that will read them: GitHub's
workflow schema, `systemd-analyze verify`, cron expressions per croniter, and /bin/sh."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from croniter import croniter

from tests.code.conftest import CHECK_JSONSCHEMA, check_workflow, load_workflow
from tests.conftest import missing_tool

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
WORKFLOW = DEPLOY / "github" / "retrain.yml"
CRONTAB = DEPLOY / "crontab"
SYSTEMD = DEPLOY / "systemd"
SERVICE = SYSTEMD / "epochline-retrain.service"
TIMER = SYSTEMD / "epochline-retrain.timer"
ENV_EXAMPLE = SYSTEMD / "retrain.env.example"
# absolute(), not resolve(): the venv's python is a symlink, and resolving it leaves the venv.
PLACEHOLDER = "/srv/epochline"
RETRAIN = "epochline retrain --commit --push"
SCRIPT_REL = "deploy/scheduled-retrain.sh"
LOCK_BUSY = 75


def _steps() -> list[dict[str, Any]]:
    jobs = load_workflow(WORKFLOW)["jobs"]
    return [step for job in jobs.values() for step in job["steps"]]


def test_workflow_passes_github_schema() -> None:
    result = check_workflow(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_schema_check_fails_without_runs_on(tmp_path: Path) -> None:
    doc = load_workflow(WORKFLOW)
    for job in doc["jobs"].values():
        del job["runs-on"]
    broken = tmp_path / "retrain.yml"
    broken.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = check_workflow(broken)
    assert result.returncode != 0, result.stdout
    assert "runs-on" in result.stdout + result.stderr


def test_workflow_triggers_and_guards() -> None:
    doc = load_workflow(WORKFLOW)
    crons = [entry["cron"] for entry in doc["on"]["schedule"]]
    assert crons
    for expr in crons:
        # GitHub takes exactly five fields; croniter would also accept a seconds field.
        assert len(expr.split()) == 5 and croniter.is_valid(expr), expr
    assert "workflow_dispatch" in doc["on"]
    assert doc["permissions"] == {"contents": "write"}
    assert doc["concurrency"]["group"]
    assert doc["concurrency"]["cancel-in-progress"] is False
    for job in doc["jobs"].values():
        assert job["timeout-minutes"] > 0


def test_workflow_steps() -> None:
    steps = _steps()
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0
    python = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python@"))
    assert python["with"]["python-version"] == "3.11"
    runs = [s.get("run", "") for s in steps]
    # The workflow runs the script the team-mode tests run (tests/team), nothing else.
    retrain = next(i for i, run in enumerate(runs) if run.strip() == f"bash {SCRIPT_REL}")
    assert "DVC_REMOTE_ENDPOINT" in steps[retrain]["env"]
    assert any("make setup" in run for run in runs[:retrain])
    assert any("git config user.email" in run for run in runs[:retrain])


def test_scheduled_retrain_script_pulls_retrains_skips_on_75_and_pushes() -> None:
    script = (REPO / SCRIPT_REL).read_text()
    pull, retrain, push = (script.index(s) for s in ("dvc pull", RETRAIN, "\ngit push"))
    assert pull < retrain < push
    assert f'"$rc" -eq {LOCK_BUSY}' in script
    check = subprocess.run(["bash", "-n", str(REPO / SCRIPT_REL)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def _crontab_entries() -> list[tuple[str, str]]:
    """(schedule, command) for each job line: not a comment, blank, or VAR=value line."""
    entries = []
    for line in CRONTAB.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        first = stripped.split(maxsplit=1)[0]
        if "=" in first:
            continue
        fields = stripped.split(maxsplit=5)
        assert len(fields) == 6, f"not 5 schedule fields and a command: {line!r}"
        entries.append((" ".join(fields[:5]), fields[5]))
    return entries


def test_crontab_entries_are_valid() -> None:
    entries = _crontab_entries()
    assert entries
    for schedule, command in entries:
        assert croniter.is_valid(schedule), schedule
        assert RETRAIN in command
        # cron turns an unescaped % into a newline, which would cut the command short.
        assert "%" not in command.replace("\\%", "")


@pytest.mark.parametrize(("exit_code", "ok"), [(0, True), (LOCK_BUSY, True), (1, False)])
def test_crontab_command_runs_under_sh(tmp_path: Path, exit_code: int, ok: bool) -> None:
    """Run the job's command as cron would (`sh -c`), with a stub epochline."""
    repo, log_dir = tmp_path / "repo", tmp_path / "log"
    stub = repo / ".venv" / "bin" / "epochline"
    stub.parent.mkdir(parents=True)
    log_dir.mkdir()
    stub.write_text(f'#!/bin/sh\necho "args: $* token: $FROM_ENV_FILE"\nexit {exit_code}\n')
    stub.chmod(0o755)
    env_file = tmp_path / "retrain.env"
    env_file.write_text("FROM_ENV_FILE=sourced\n")
    ((_, command),) = _crontab_entries()
    command = (
        command.replace(PLACEHOLDER, str(repo))
        .replace("/etc/epochline/retrain.env", str(env_file))
        .replace("/var/log/epochline", str(log_dir))
    )
    result = subprocess.run(
        ["/bin/sh", "-c", command],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": os.defpath},
    )
    assert (result.returncode == 0) is ok, result.stderr
    # A failure says so on stderr (cron mails it); a success or a skip stays quiet.
    assert bool(result.stderr) is not ok, result.stderr
    log = (log_dir / "retrain.log").read_text()
    assert "args: retrain --commit --push token: sourced" in log


def _systemd_units(tmp_path: Path, **replace: str) -> list[Path]:
    """The units, pointed at a temporary checkout with a stub epochline, for verify."""
    if shutil.which("systemd-analyze") is None:
        missing_tool("systemd-analyze", "apt-get install systemd, to verify the units")
    checkout = tmp_path / "checkout"
    stub = checkout / ".venv" / "bin" / "epochline"
    stub.parent.mkdir(parents=True)
    # verify checks that ExecStart's binary exists and is executable.
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    units = []
    for unit in (SERVICE, TIMER):
        text = unit.read_text().replace(PLACEHOLDER, str(checkout))
        for old, new in replace.items():
            text = text.replace(old, new)
        copy = tmp_path / unit.name
        copy.write_text(text)
        copy.chmod(0o644)  # verify warns about executable unit files
        units.append(copy)
    return units


def _verify(units: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *map(str, units)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_systemd_units_verify(tmp_path: Path) -> None:
    result = _verify(_systemd_units(tmp_path))
    # Unknown keys and bad values only warn, with exit 0: stderr must be empty too.
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_systemd_verify_rejects_a_bad_calendar(tmp_path: Path) -> None:
    units = _systemd_units(tmp_path, **{"OnCalendar=*-*-* 03:00:00": "OnCalendar=notadate"})
    assert "OnCalendar=notadate" in units[1].read_text()
    result = _verify(units)
    assert result.returncode != 0
    assert "notadate" in result.stderr


def _unit_settings(path: Path) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_systemd_units_settings() -> None:
    service, timer = _unit_settings(SERVICE), _unit_settings(TIMER)
    assert service["Type"] == ["oneshot"]
    assert service["ExecStart"] == [f"{PLACEHOLDER}/.venv/bin/{RETRAIN}"]
    assert service["WorkingDirectory"] == [PLACEHOLDER]
    assert service["SuccessExitStatus"] == [str(LOCK_BUSY)]
    assert service["EnvironmentFile"] == ["-/etc/epochline/retrain.env"]
    assert service["User"] == ["epochline"]
    assert timer["Persistent"] == ["true"]
    assert timer["WantedBy"] == ["timers.target"]
    assert "RandomizedDelaySec" in timer


@pytest.mark.parametrize("path", [CRONTAB, SERVICE, WORKFLOW], ids=lambda p: p.name)
def test_scheduler_runs_retrain_and_names_tracking_uri(path: Path) -> None:
    text = path.read_text()
    assert RETRAIN in text
    assert "MLFLOW_TRACKING_URI" in text


@pytest.mark.parametrize(
    "variable",
    [
        "MLFLOW_TRACKING_URI",
        "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD",
        "MLFLOW_TRACKING_TOKEN",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ],
)
def test_env_example_lists_variable(variable: str) -> None:
    lines = ENV_EXAMPLE.read_text().splitlines()
    assert any(line.lstrip("#").startswith(f"{variable}=") for line in lines)


TEAM = DEPLOY / "team"


def test_team_compose_file_passes_the_compose_specification() -> None:
    check = subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec",
         str(TEAM / "compose.yaml")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    services = yaml.safe_load((TEAM / "compose.yaml").read_text())["services"]
    assert {"postgres", "minio", "mlflow"} <= set(services)
    command = " ".join(map(str, services["mlflow"].get("command", [])))
    assert "basic-auth" in command and "--artifacts-destination" in command


def test_team_env_example_holds_placeholders_only() -> None:
    values = [
        line.split("=", 1)[1]
        for line in (TEAM / "env.example").read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    ]
    assert values and all(v.startswith("change-me") for v in values), values
