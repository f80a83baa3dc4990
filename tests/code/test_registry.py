"""The registry's aliases agree with its record: a promotion or rollback that a killed process
left half done is completed, against a real SQLite MLflow store."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from mlflow.tracking import MlflowClient

from epochline.tracking.registry import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS,
    Registry,
    Tag,
    tag_name,
    tag_of,
)
from epochline.tracking.tags import KEPT, PROMOTED

_names = itertools.count()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MlflowClient, str]]:
    """One store for the module (its schema takes seconds); each test its own model."""
    root = tmp_path_factory.mktemp("store")
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.create_experiment("e", artifact_location=(root / "artifacts").as_uri())
    yield client, client.create_run(experiment).info.run_id


def _registry(
    store: tuple[MlflowClient, str],
    versions: list[dict[Tag, str]],
    aliases: dict[str, int],
) -> Registry:
    """A registered model whose versions 1, 2, … carry these tags, with these aliases."""
    client, run_id = store
    registry = Registry(client, f"model-{next(_names)}")
    for n, tags in enumerate(versions, 1):
        registry.register(f"file:///models/{n}", run_id, f"digest-{n}")
        registry.tag(str(n), tags)
    for alias, version in aliases.items():
        client.set_registered_model_alias(registry.name, alias, str(version))
    return registry


def _aliases(registry: Registry) -> dict[str, int]:
    found = {a: registry.alias(a) for a in (CHAMPION, PREVIOUS, CHALLENGER)}
    return {a: int(v.version) for a, v in found.items() if v is not None}


def _promoted(replaced: int | None = None) -> dict[Tag, str]:
    return {Tag.DECISION: PROMOTED} | ({Tag.REPLACED_VERSION: str(replaced)} if replaced else {})


ROLLED_BACK = {Tag.ROLLED_BACK: "2026-01-02T03:04:05+00:00", Tag.ROLLBACK_REASON: "bad"}


@pytest.mark.parametrize(
    ("versions", "before", "after", "said"),
    [
        # Killed after v2's decision was on record, before the aliases moved.
        ([_promoted(), _promoted()], {CHAMPION: 1, CHALLENGER: 2},
         {CHAMPION: 2, PREVIOUS: 1, CHALLENGER: 2}, "completed the promotion of v2"),
        # Killed between the two alias moves: previous-champion moved, champion not yet.
        ([_promoted(), _promoted(1)], {CHAMPION: 1, PREVIOUS: 1, CHALLENGER: 2},
         {CHAMPION: 2, PREVIOUS: 1, CHALLENGER: 2}, "previous-champion v1"),
        # The first promotion ever, killed before its one alias move.
        ([_promoted()], {CHALLENGER: 1}, {CHAMPION: 1, CHALLENGER: 1}, "previous-champion none"),
        # Killed after recording a rollback of v2, before the aliases moved.
        ([_promoted(), _promoted(1) | ROLLED_BACK], {CHAMPION: 2, PREVIOUS: 1},
         {CHAMPION: 1}, "completed the rollback of v2: champion v1"),
        # Killed between a rollback's alias moves: champion moved, previous-champion not yet.
        ([_promoted(), _promoted(1), _promoted(2) | ROLLED_BACK], {CHAMPION: 2, PREVIOUS: 2},
         {CHAMPION: 2, PREVIOUS: 1}, "previous-champion was v2, the champion itself: now v1"),
    ],
    ids=["promotion-before-aliases", "promotion-between-aliases", "first-promotion",
         "rollback-before-aliases", "rollback-between-aliases"],
)  # fmt: skip
def test_a_half_done_change_is_completed_as_recorded(
    store: tuple[MlflowClient, str],
    versions: list[dict[Tag, str]],
    before: dict[str, int],
    after: dict[str, int],
    said: str,
) -> None:
    registry = _registry(store, versions, before)
    (repaired,) = registry.repair()
    assert said in repaired
    assert _aliases(registry) == after
    assert registry.repair() == []  # done: nothing left to repair


def test_a_completed_promotion_records_the_version_it_replaced(
    store: tuple[MlflowClient, str],
) -> None:
    registry = _registry(store, [_promoted(), _promoted()], {CHAMPION: 1})
    registry.repair()
    promoted = registry.client.get_model_version(registry.name, "2")
    assert tag_of(promoted, Tag.REPLACED_VERSION) == "1"


def test_a_completed_rollback_tags_the_version_it_restored(store: tuple[MlflowClient, str]) -> None:
    registry = _registry(
        store, [_promoted(), _promoted(1) | ROLLED_BACK], {CHAMPION: 2, PREVIOUS: 1}
    )
    registry.repair()
    restored = registry.client.get_model_version(registry.name, "1")
    assert tag_of(restored, Tag.RESTORED_BY_ROLLBACK) == ROLLED_BACK[Tag.ROLLED_BACK]
    assert tag_of(restored, Tag.ROLLBACK_REASON) == "bad"


@pytest.mark.parametrize(
    ("versions", "aliases"),
    [
        ([_promoted(), _promoted(1)], {CHAMPION: 2, PREVIOUS: 1, CHALLENGER: 2}),
        ([_promoted(), {Tag.DECISION: KEPT}], {CHAMPION: 1, CHALLENGER: 2}),
        # Promoted, then rolled back: never promoted again.
        ([_promoted(), _promoted(1) | ROLLED_BACK], {CHAMPION: 1, CHALLENGER: 2}),
        ([_promoted(), {}], {CHAMPION: 1, CHALLENGER: 2}),  # registered, not yet judged
        ([], {}),
    ],
    ids=["promoted", "kept", "rolled-back", "unjudged", "empty"],
)
def test_a_registry_that_agrees_with_its_record_is_left_alone(
    store: tuple[MlflowClient, str], versions: list[dict[Tag, str]], aliases: dict[str, int]
) -> None:
    registry = _registry(store, versions, aliases)
    assert registry.repair() == []
    assert _aliases(registry) == aliases


def test_rollback_records_then_moves_champion_down_the_chain(
    store: tuple[MlflowClient, str],
) -> None:
    registry = _registry(
        store, [_promoted(), _promoted(1), _promoted(2)], {CHAMPION: 3, PREVIOUS: 2}
    )
    assert registry.rollback("drifted", "2026-01-01T00:00:00+00:00") == ("3", "2", "1")
    assert _aliases(registry) == {CHAMPION: 2, PREVIOUS: 1}
    old = registry.client.get_model_version(registry.name, "3")
    assert old.tags[tag_name(Tag.ROLLED_BACK)] == "2026-01-01T00:00:00+00:00"
    assert tag_of(old, Tag.ROLLBACK_REASON) == "drifted"
    assert registry.rollback("again", "2026-01-01T00:00:01+00:00") == ("2", "1", None)
    assert _aliases(registry) == {CHAMPION: 1}
    assert registry.repair() == []  # rolled-back v3 and v2 are not promoted again
    with pytest.raises(LookupError, match="previous-champion"):
        registry.rollback("no more", "2026-01-01T00:00:02+00:00")


def test_promote_moves_previous_champion_then_champion(store: tuple[MlflowClient, str]) -> None:
    registry = _registry(store, [_promoted(), _promoted()], {CHAMPION: 1})
    registry.promote("2", "1")
    assert _aliases(registry) == {CHAMPION: 2, PREVIOUS: 1}
    first = _registry(store, [_promoted()], {})
    first.promote("1", None)
    assert _aliases(first) == {CHAMPION: 1}


def test_versions_are_found_by_their_tags(store: tuple[MlflowClient, str]) -> None:
    registry = _registry(store, [{Tag.DECISION: KEPT}, {Tag.DECISION: PROMOTED}, {}], {})
    found = registry.version_with_tag(Tag.MODEL_DIGEST, "digest-2")
    assert found is not None and int(found.version) == 2
    judged = registry.newest_judged()
    assert judged is not None and int(judged.version) == 2
    assert registry.version_with_tag(Tag.MODEL_DIGEST, "nope") is None
