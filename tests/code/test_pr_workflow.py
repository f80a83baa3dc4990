"""The pull-request report's workflow (deploy/github/pr-report.yml) and script, checked by
what will read them: GitHub's workflow schema, bash and shellcheck, and node running the
comment step's own JavaScript against a stand-in for GitHub's REST client that records the
calls. tests/e2e/test_pr_report.py runs the script on a real two-branch repository."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.code.conftest import check_workflow, load_workflow
from tests.conftest import missing_tool

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / "deploy" / "github" / "pr-report.yml"
SCRIPT_REL = "deploy/github/pr-report.sh"
SCRIPT = REPO / SCRIPT_REL
ARTIFACT = "epochline-compare"


def _script_value(name: str) -> str:
    """A variable the script sets once (`name=value`), as bash would read it."""
    found = re.search(rf"^{name}=(.*)$", SCRIPT.read_text(), re.MULTILINE)
    assert found, f"{name}= not in {SCRIPT_REL}"
    return found.group(1).strip('"')


MARKER = _script_value("MARKER")
COMMENT_FILE = _script_value("comment").replace("$out", _script_value("out"))


def _steps() -> list[dict[str, Any]]:
    ((job,),) = [list(load_workflow(WORKFLOW)["jobs"].values())]
    steps: list[dict[str, Any]] = job["steps"]
    return steps


def _index(steps: list[dict[str, Any]], uses: str) -> int:
    found = [i for i, s in enumerate(steps) if s.get("uses", "").startswith(f"{uses}@")]
    assert len(found) == 1, f"{len(found)} steps use {uses}"
    return found[0]


def test_workflow_passes_github_schema() -> None:
    result = check_workflow(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_rejects_a_bad_permission(tmp_path: Path) -> None:
    doc = load_workflow(WORKFLOW)
    doc["permissions"]["pull-requests"] = "admin"  # read, write or none only
    broken = tmp_path / "pr-report.yml"
    broken.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = check_workflow(broken)
    assert result.returncode != 0, result.stdout
    assert "admin" in result.stdout + result.stderr


def test_workflow_runs_on_pull_requests_with_a_write_token_for_comments_only() -> None:
    doc = load_workflow(WORKFLOW)
    assert "pull_request" in doc["on"]
    assert "pull_request_target" not in doc["on"]  # never the fork's code with our secrets
    assert doc["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert "github.event.pull_request.number" in doc["concurrency"]["group"]
    assert doc["concurrency"]["cancel-in-progress"] is True
    for job in doc["jobs"].values():
        assert job["timeout-minutes"] > 0


def test_workflow_sets_up_runs_the_script_uploads_and_posts_once() -> None:
    steps = _steps()
    checkout = steps[_index(steps, "actions/checkout")]
    assert checkout["with"]["fetch-depth"] == 0  # origin/BASE must exist for the script
    python = steps[_index(steps, "actions/setup-python")]
    assert python["with"]["python-version"] == "3.11"
    runs = [s.get("run", "").strip() for s in steps]
    report = runs.index(f"bash {SCRIPT_REL}")
    assert any(run.startswith("make setup") for run in runs[:report])
    env = steps[report]["env"]
    assert env["GITHUB_BASE_REF"] == "${{ github.base_ref }}"
    for name in ("MLFLOW_TRACKING_URI", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert env[name] == f"${{{{ secrets.{name} }}}}"
    upload = _index(steps, "actions/upload-artifact")
    assert upload > report
    assert steps[upload]["with"]["name"] == ARTIFACT
    assert steps[upload]["with"]["path"].rstrip("/") == str(Path(COMMENT_FILE).parent)
    post = _index(steps, "actions/github-script")  # the one step that writes to the PR
    assert post > upload
    assert steps[post]["env"]["COMMENT_FILE"] == COMMENT_FILE
    assert f"steps.{steps[report]['id']}.outcome" in steps[post]["env"]["REPORT_OUTCOME"]
    assert f"steps.{steps[upload]['id']}.outputs.artifact-url" in steps[post]["env"]["ARTIFACT_URL"]
    # The report that failed still updates the comment (so it shows no stale numbers).
    assert "!cancelled()" in steps[post]["if"] and "!cancelled()" in steps[upload]["if"]
    assert f"the artifact {ARTIFACT}" in SCRIPT.read_text()


def test_script_parses_and_passes_shellcheck() -> None:
    check = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    if shutil.which("shellcheck") is None:
        missing_tool("shellcheck", "apt-get install shellcheck, to lint the deploy scripts")
    lint = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.fixture
def bare_checkout(tmp_path: Path) -> Path:
    """A git repository holding only the script: enough for what it checks first."""
    (tmp_path / "deploy" / "github").mkdir(parents=True)
    shutil.copy(SCRIPT, tmp_path / SCRIPT_REL)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "script"]):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, env=_git_env())
    return tmp_path


def _git_env(**extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "MLFLOW_"))}
    ident = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t.invalid"}
    return keep | ident | {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t.invalid"} | extra


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        ([], {}, "usage:"),
        ([], {"GITHUB_BASE_REF": "main"}, "base revision 'origin/main' not found"),
        (["no-such-branch"], {}, "base revision 'no-such-branch' not found"),
    ],
)
def test_script_refuses_a_missing_base_before_doing_anything(
    bare_checkout: Path, args: list[str], env: dict[str, str], says: str
) -> None:
    done = subprocess.run(
        ["bash", str(bare_checkout / SCRIPT_REL), *args],
        cwd=bare_checkout, env=_git_env(**env), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert says in done.stderr
    assert not (bare_checkout / COMMENT_FILE).parent.exists()


# The comment step's JavaScript, run by node as actions/github-script runs it: an async
# function of `github`, `context`, `require`. The stand-in records every call it gets.
HARNESS = """
const calls = [];
const existing = JSON.parse(process.env.EXISTING);
const record = (name) => async (args) => { calls.push({name, ...args}); return {data: {}}; };
const github = {
  rest: {issues: {listComments: record('list'), createComment: record('create'),
                  updateComment: record('update'), deleteComment: record('delete')}},
  paginate: async (method, args) => existing,
};
const context = {repo: {owner: 'team', repo: 'model'}, issue: {number: 7}, runId: 99,
                 sha: 'abcdef0123456789', serverUrl: 'https://github.com'};
(async () => { SCRIPT })().then(() => console.log(JSON.stringify(calls)),
                               (e) => { console.error(e); process.exit(1); });
"""


def _post(tmp_path: Path, existing: list[dict[str, Any]], **env: str) -> list[dict[str, Any]]:
    if shutil.which("node") is None:
        missing_tool("node", "apt-get install nodejs, to run the workflow's comment step")
    step = _steps()[_index(_steps(), "actions/github-script")]
    harness = tmp_path / "post.js"
    harness.write_text(HARNESS.replace("SCRIPT", step["with"]["script"]))
    step_env = {k: v for k, v in step["env"].items() if not v.startswith("${{")}
    done = subprocess.run(
        ["node", str(harness)],
        cwd=tmp_path,
        env=os.environ | step_env | {"EXISTING": json.dumps(existing)} | env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    calls: list[dict[str, Any]] = json.loads(done.stdout)
    return calls


def _comment(comment_id: int, body: str, login: str = "github-actions[bot]") -> dict[str, Any]:
    return {"id": comment_id, "body": body, "user": {"login": login}}


@pytest.fixture
def report_body(tmp_path: Path) -> str:
    body = f"{MARKER}\n# Compare\nPlots (curves.png, roc.png): the artifact {ARTIFACT} of x.\n"
    (tmp_path / COMMENT_FILE).parent.mkdir(parents=True)
    (tmp_path / COMMENT_FILE).write_text(body)
    return body


def test_comment_is_created_once_then_updated(tmp_path: Path, report_body: str) -> None:
    first = _post(tmp_path, [_comment(1, "LGTM", "alice")], REPORT_OUTCOME="success")
    assert [(c["name"], c["issue_number"], c["body"]) for c in first] == [
        ("create", 7, report_body)
    ]
    mine = _comment(5, report_body)
    # A person quoting the marker is not ours to overwrite.
    quoted = _comment(6, report_body, "alice")
    again = _post(tmp_path, [quoted, mine], REPORT_OUTCOME="success")
    assert [(c["name"], c["comment_id"]) for c in again] == [("update", 5)]


def test_a_second_comment_of_ours_is_removed(tmp_path: Path, report_body: str) -> None:
    ours = [_comment(5, report_body), _comment(8, report_body)]
    calls = _post(tmp_path, ours, REPORT_OUTCOME="success", ARTIFACT_URL="https://a.invalid/1")
    assert [(c["name"], c["comment_id"]) for c in calls] == [("update", 5), ("delete", 8)]
    assert f"the artifact [{ARTIFACT}](https://a.invalid/1) of x." in calls[0]["body"]


def test_a_failed_report_replaces_the_numbers_with_a_pointer_to_the_run(
    tmp_path: Path, report_body: str
) -> None:
    calls = _post(tmp_path, [_comment(5, report_body)], REPORT_OUTCOME="failure")
    ((update,),) = [calls]
    assert update["name"] == "update" and update["comment_id"] == 5
    assert update["body"].startswith(MARKER)
    assert "no report for abcdef0" in update["body"] and "ended with failure" in update["body"]
    assert "https://github.com/team/model/actions/runs/99" in update["body"]
    assert "# Compare" not in update["body"]
