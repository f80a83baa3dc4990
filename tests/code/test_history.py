"""The champion's history: every alias move on record on the registered model (when, from,
to, by, why, kind), and `epochline history [--at T]` reading it, against a real SQLite MLflow
store."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from epochline.cli import app
from epochline.core import errors
from epochline.review.history import parse_at
from epochline.tracking.registry import (
    CHAMPION,
    FIRST,
    PREVIOUS,
    PROMOTE,
    REPAIR,
    ROLLBACK,
    WHY_LIMIT,
    Registry,
    Tag,
)
from epochline.tracking.tags import ALIAS_MOVE_PREFIX, PROMOTED

_names = itertools.count()
WHEN = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture(scope="module")
def store_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One store for the module (its schema takes seconds); each test its own model."""
    root = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    client.create_experiment("e", artifact_location=(root / "artifacts").as_uri())
    yield uri


@pytest.fixture
def registry(store_uri: str, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """A new registered model with versions 1-3, each with a decision's reason (not yet the
    decision: see _decided); no alias. Moves are by `alice`, as with basic auth."""
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    client = MlflowClient(store_uri)
    experiment = client.get_experiment_by_name("e")
    assert experiment is not None
    run_id = client.create_run(experiment.experiment_id).info.run_id
    found = Registry(client, f"model-{next(_names)}")
    for n in (1, 2, 3):
        found.register(f"file:///models/{n}", run_id, f"digest-{n}")
        found.tag(str(n), {Tag.REASON: f"reason {n}"})
    return found


def _decided(registry: Registry, *versions: str) -> None:
    """On record as promoted, as retrain writes it before promote(): repair completes them."""
    for version in versions:
        registry.tag(version, {Tag.DECISION: PROMOTED})


@pytest.fixture
def project(
    tmp_path: Path, store_uri: str, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The working directory: params.yaml naming `registry`'s model, the store the module's."""
    (tmp_path / "params.yaml").write_text(f"tracking:\n  registered_model_name: {registry.name}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_uri)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    return tmp_path


def stored_moves(registry: Registry) -> dict[str, dict[str, object]]:
    """The move tags as the store holds them, read by a client of their own."""
    client = MlflowClient(registry.client.tracking_uri)
    tags = client.get_registered_model(registry.name).tags
    return {k: json.loads(v) for k, v in sorted(tags.items()) if k.startswith(ALIAS_MOVE_PREFIX)}


def _version(registry: Registry, alias: str) -> str | None:
    found = registry.alias(alias)
    return None if found is None else str(found.version)


def test_every_champion_move_is_on_record_with_when_from_to_by_and_why(
    registry: Registry,
) -> None:
    registry.promote("1", None)
    registry.promote("2", "1")
    registry.promote("3", "2")
    registry.rollback("v3 misbehaves in production", "2026-12-01T06:15:03+00:00")

    moves = stored_moves(registry)
    assert list(moves) == [f"epochline.alias_move.00000{n}" for n in (1, 2, 3, 4)]
    shapes = [
        (m["kind"], m["alias"], m["from"], m["to"], m["by"], m["why"]) for m in moves.values()
    ]
    assert shapes == [
        (FIRST, CHAMPION, None, "1", "alice", "reason 1"),
        (PROMOTE, CHAMPION, "1", "2", "alice", "reason 2"),
        (PROMOTE, CHAMPION, "2", "3", "alice", "reason 3"),
        (ROLLBACK, CHAMPION, "3", "2", "alice", "v3 misbehaves in production"),
    ]
    assert all(WHEN.match(str(m["when"])) for m in moves.values())
    assert moves["epochline.alias_move.000004"]["when"] == "2026-12-01T06:15:03Z"
    assert [set(m) for m in moves.values()] == [
        {"when", "alias", "from", "to", "by", "why", "kind"}
    ] * 4
    assert (_version(registry, CHAMPION), _version(registry, PREVIOUS)) == ("2", "1")


def test_by_is_the_os_user_without_an_mlflow_user(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    monkeypatch.setenv("LOGNAME", "bob")  # what getpass.getuser() reads first
    registry.promote("1", None)
    (move,) = stored_moves(registry).values()
    assert move["by"] == "bob"


def test_history_prints_the_timeline_under_a_header(project: Path, registry: Registry) -> None:
    registry.promote("1", None)
    registry.promote("2", "1")
    registry.rollback("bad\npredictions", "2026-12-01T06:15:03+00:00")

    done = CliRunner().invoke(app, ["history"])
    assert done.exit_code == 0, done.output
    header, *lines = done.stdout.splitlines()
    assert header == (
        f"registered model {registry.name}: champion v1, previous-champion none; "
        "3 alias moves on record (tags epochline.alias_move.*)"
    )
    pattern = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  "
    assert re.fullmatch(
        pattern + "first     champion none -> v1  by alice  why: reason 1", lines[0]
    )
    assert re.fullmatch(pattern + "promote   champion v1 -> v2  by alice  why: reason 2", lines[1])
    assert lines[2] == (
        "2026-12-01T06:15:03Z  rollback  champion v2 -> v1  by alice  why: bad predictions"
    )


@pytest.fixture
def dated(registry: Registry) -> Registry:
    """Three moves at known times: v1 on 1 March, v2 on 2 March 10:00, back to v1 on 4 March."""
    registry.record_move(FIRST, None, "1", "first", "2026-03-01T10:00:00+00:00")
    registry.record_move(PROMOTE, "1", "2", "better", "2026-03-02T10:00:00Z")
    registry.record_move(ROLLBACK, "2", "1", "broke prod", "2026-03-04T10:00:00+00:00")
    registry.client.set_registered_model_alias(registry.name, CHAMPION, "1")
    return registry


@pytest.mark.parametrize(
    ("at", "said"),
    [
        ("2026-03-03T12:00", "at 2026-03-03T12:00:00Z: champion was v2 (since "
         "2026-03-02T10:00:00Z, promote by alice: better)"),
        ("2026-03-03", "at 2026-03-03T00:00:00Z: champion was v2"),
        ("2026-03-02T10:00:00Z", "at 2026-03-02T10:00:00Z: champion was v2"),  # that second
        ("2026-03-02T11:30+02:00", "at 2026-03-02T09:30:00Z: champion was v1 (since "
         "2026-03-01T10:00:00Z, first by alice: first)"),
        ("2026-03-05 08:00:00", "at 2026-03-05T08:00:00Z: champion was v1 (since "
         "2026-03-04T10:00:00Z, rollback by alice: broke prod)"),
        ("2026-02-28T23:59:59Z", "at 2026-02-28T23:59:59Z: no champion yet (the first "
         "promotion was at 2026-03-01T10:00:00Z)"),
    ],
)  # fmt: skip
def test_at_answers_which_version_was_champion_then(
    project: Path, dated: Registry, at: str, said: str
) -> None:
    done = CliRunner().invoke(app, ["history", "--at", at])
    assert done.exit_code == 0, done.output
    assert done.stdout.strip().startswith(said)
    assert len(done.stdout.strip().splitlines()) == 1


@pytest.mark.parametrize("bad", ["yesterday", "2026-13-01", "03/03/2026", ""])
def test_a_bad_at_is_one_error_line_naming_it_exit_2(project: Path, bad: str) -> None:
    done = CliRunner().invoke(app, ["history", "--at", bad])
    assert done.exit_code == errors.USER_ERROR
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: --at {bad!r} is not a time: use ISO 8601, e.g. 2026-03-03")
    assert done.stdout == ""


def test_parse_at_takes_utc_unless_told() -> None:
    assert parse_at("2026-03-03T12:00").isoformat() == "2026-03-03T12:00:00+00:00"
    assert parse_at("2026-03-03T12:00-05:00").isoformat() == "2026-03-03T17:00:00+00:00"


def test_no_registered_model_is_one_line_exit_2(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "params.yaml").write_text("tracking:\n  registered_model_name: nowhere\n")
    done = CliRunner().invoke(app, ["history"])
    assert done.exit_code == errors.USER_ERROR
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: no registered model 'nowhere' in sqlite:///")
    assert "`epochline retrain` registers one" in line


def test_a_champion_from_before_the_record_is_said_so(project: Path, registry: Registry) -> None:
    """A registry promoted before moves were recorded: the champion, and where to look."""
    registry.client.set_registered_model_alias(registry.name, CHAMPION, "2")
    done = CliRunner().invoke(app, ["history"])
    assert done.exit_code == 0
    assert done.stdout.startswith(
        f"registered model {registry.name}: champion v2; no alias move on record"
    )
    assert "epochline.replaced_version" in done.stdout
    cannot = CliRunner().invoke(app, ["history", "--at", "2026-03-03"])
    assert cannot.exit_code == errors.FAILED
    (line,) = cannot.stderr.strip().splitlines()
    assert line.startswith("error: --at 2026-03-03T00:00:00Z: cannot tell;")


WHEN_STOPPED = "2026-12-01T06:15:03+00:00"


def _promotion_on_record(registry: Registry, version: str, replaces: str) -> None:
    """What promote() writes before it moves an alias: a process stopped there left this."""
    registry.tag(version, {Tag.REPLACED_VERSION: replaces})
    registry.record_move(PROMOTE, replaces, version, f"reason {version}")


def _rollback_on_record(registry: Registry, old: str, new: str) -> None:
    """What rollback() writes before it moves an alias."""
    registry.tag(old, {Tag.ROLLED_BACK: WHEN_STOPPED, Tag.ROLLBACK_REASON: "broke"})
    registry.tag(new, {Tag.RESTORED_BY_ROLLBACK: WHEN_STOPPED, Tag.ROLLBACK_REASON: "broke"})
    registry.record_move(ROLLBACK, old, new, "broke", WHEN_STOPPED)


def test_a_promotion_stopped_before_its_aliases_is_completed_once(registry: Registry) -> None:
    _decided(registry, "1", "2")
    registry.promote("1", None)
    _promotion_on_record(registry, "2", "1")
    assert len(stored_moves(registry)) == 2  # on record before the aliases
    assert _version(registry, CHAMPION) == "1"

    assert registry.repair() == ["completed the promotion of v2: champion v2, previous-champion v1"]
    assert registry.repair() == []
    moves = list(stored_moves(registry).values())
    assert [(m["kind"], m["from"], m["to"]) for m in moves] == [
        (FIRST, None, "1"),
        (PROMOTE, "1", "2"),
    ]
    assert (_version(registry, CHAMPION), _version(registry, PREVIOUS)) == ("2", "1")


def test_a_rollback_stopped_before_its_aliases_is_completed_once(registry: Registry) -> None:
    _decided(registry, "1", "2")
    registry.promote("1", None)
    registry.promote("2", "1")
    _rollback_on_record(registry, "2", "1")
    assert _version(registry, CHAMPION) == "2"

    (said,) = registry.repair()
    assert said.startswith("completed the rollback of v2: champion v1")
    moves = list(stored_moves(registry).values())
    assert [(m["kind"], m["from"], m["to"], m["why"]) for m in moves[2:]] == [
        (ROLLBACK, "2", "1", "broke")
    ]
    assert _version(registry, CHAMPION) == "1"


def test_a_rollback_stopped_between_its_aliases_is_completed_once(registry: Registry) -> None:
    """Champion moved back, previous-champion not yet: the repair moves only the latter."""
    _decided(registry, "1", "2", "3")
    for version, replaces in (("1", None), ("2", "1"), ("3", "2")):
        registry.promote(version, replaces)
    _rollback_on_record(registry, "3", "2")
    registry.client.set_registered_model_alias(registry.name, CHAMPION, "2")  # its first move
    assert (_version(registry, CHAMPION), _version(registry, PREVIOUS)) == ("2", "2")

    (said,) = registry.repair()
    assert said == "previous-champion was v2, the champion itself: now v1"
    moves = list(stored_moves(registry).values())
    assert [(m["kind"], m["from"], m["to"]) for m in moves] == [
        (FIRST, None, "1"),
        (PROMOTE, "1", "2"),
        (PROMOTE, "2", "3"),
        (ROLLBACK, "3", "2"),
    ]


def test_at_before_the_first_move_on_record_names_the_champion_it_moved(
    project: Path, registry: Registry
) -> None:
    """A registry promoted before moves were recorded, then moved: v1 was champion before."""
    _decided(registry, "1", "2")
    registry.client.set_registered_model_alias(registry.name, CHAMPION, "1")  # not on record
    registry.promote("2", "1")
    done = CliRunner().invoke(app, ["history", "--at", "2000-01-01"])
    assert done.exit_code == 0
    assert done.stdout.startswith("at 2000-01-01T00:00:00Z: champion was v1 (the first move")


def test_a_champion_moved_outside_epochline_is_said_so(project: Path, registry: Registry) -> None:
    _decided(registry, "1", "2", "3")
    registry.promote("1", None)
    registry.promote("2", "1")
    registry.client.set_registered_model_alias(registry.name, CHAMPION, "3")  # in the UI, say
    done = CliRunner().invoke(app, ["history"])
    note = done.stdout.splitlines()[1]
    assert note == (
        "note: champion v3 was set outside epochline (the last move on record made it v2); "
        "that change is not on record"
    )
    registry.client.set_registered_model_alias(registry.name, CHAMPION, "1")  # the record's v1
    _promotion_on_record(registry, "3", "1")  # stopped before its aliases moved
    done = CliRunner().invoke(app, ["history"])
    assert "the alias has not moved yet: the next retrain or rollback completes it" in done.stdout


def test_a_promotion_stopped_before_its_record_is_recorded_by_the_repair(
    registry: Registry,
) -> None:
    """Stopped after the decision, before promote(): the repair's move says so."""
    _decided(registry, "1", "2")
    registry.promote("1", None)
    (said,) = registry.repair()
    assert said == "completed the promotion of v2: champion v2, previous-champion v1"
    moves = list(stored_moves(registry).values())
    assert len(moves) == 2
    assert (moves[1]["kind"], moves[1]["from"], moves[1]["to"]) == (REPAIR, "1", "2")
    assert moves[1]["why"] == f"{said}; its decision: reason 2"
    assert registry.repair() == [] and len(stored_moves(registry)) == 2


def test_a_huge_reason_is_cut_and_stored(registry: Registry) -> None:
    registry.promote("1", None)
    registry.promote("2", "1")
    registry.rollback("x" * 20_000, "2026-12-01T06:15:03+00:00")
    why = str(list(stored_moves(registry).values())[-1]["why"])
    assert len(why) == WHY_LIMIT and why.endswith("…")


def test_a_tag_that_is_not_a_move_is_skipped(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    registry.promote("1", None)
    registry.client.set_registered_model_tag(registry.name, "epochline.alias_move.000002", "{")
    registry.promote("2", "1")  # numbered after the highest number on record
    assert [m.number for m in registry.moves()] == [1, 3]
    assert "epochline.alias_move.000002 is not an alias move" in caplog.text
