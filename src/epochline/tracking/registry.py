"""The MLflow model registry: versions, the champion/challenger aliases, the tags on record.

A promotion or rollback writes its record (tags) first and moves the aliases last; a
process killed in between leaves a record that `repair` completes. Every move of the
champion is also on record on the registered model (AliasMove, one tag each): the
champion's history, which `epochline history` prints.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from epochline.tracking.tags import (
    ALIAS_MOVE_PREFIX,
    ALIAS_MOVE_TAG,
    PROMOTED,
    Tag,
    tag_name,
    tag_values,
)

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous-champion"
# What a missing model or alias looks like; anything else (a server error) must surface.
_NOT_FOUND = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}


# AliasMove.kind: the first champion; a promotion that replaced one; a rollback; a move that
# `repair` made to complete a promotion or rollback whose own move was not on record.
FIRST, PROMOTE, ROLLBACK, REPAIR = "first", "promote", "rollback", "repair"
# A move's `why` is cut here: the tag stays far below the registry's 5000-character column.
WHY_LIMIT = 1000


def tag_of(version: ModelVersion, key: Tag) -> str:
    return str(version.tags.get(tag_name(key), ""))


def utc_text(moment: datetime) -> str:
    """2026-12-01T06:10:03Z: UTC to the second (a naive time is taken as UTC)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc_of(when: str | None) -> str:
    try:
        return utc_text(datetime.fromisoformat(when)) if when else utc_text(datetime.now(UTC))
    except ValueError:
        return utc_text(datetime.now(UTC))


def who() -> str:
    """Whom a move is by: the MLflow user (a server with basic auth), else the OS user."""
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if user:
        return user
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container's uid with no passwd entry and no $USER
        return f"uid {os.getuid()}"


@dataclass(frozen=True)
class AliasMove:
    """One move of an alias, as on record: the registered model's tag ALIAS_MOVE_TAG(number),
    its value the JSON object {when, alias, from, to, by, why, kind}."""

    number: int
    when: str  # utc_text
    alias: str
    before: str | None  # the version the alias left ("from"); None: it had none
    after: str | None  # the version it moved to ("to")
    by: str
    why: str
    kind: str  # FIRST, PROMOTE, ROLLBACK or REPAIR

    def key(self) -> str:
        return ALIAS_MOVE_TAG.format(self.number)

    def value(self) -> str:
        why = self.why if len(self.why) <= WHY_LIMIT else self.why[: WHY_LIMIT - 1] + "…"
        record = {"when": self.when, "alias": self.alias, "from": self.before,
                  "to": self.after, "by": self.by, "why": why, "kind": self.kind}  # fmt: skip
        return json.dumps(record, ensure_ascii=False)

    @classmethod
    def parse(cls, key: str, value: str) -> AliasMove | None:
        """The move a tag holds; None (with a warning) for a tag that is not one."""
        try:
            record = json.loads(value)
            return cls(
                int(key.removeprefix(ALIAS_MOVE_PREFIX)), str(record["when"]),
                str(record["alias"]), _version(record.get("from")), _version(record.get("to")),
                str(record.get("by", "")), str(record.get("why", "")), str(record["kind"]),
            )  # fmt: skip
        except (ValueError, TypeError, KeyError):
            log.warning("registered model tag %s is not an alias move: %.80s", key, value)
            return None


def _number(key: str) -> int:
    digits = key.removeprefix(ALIAS_MOVE_PREFIX)
    return int(digits) if digits.isdigit() else 0


def _version(value: object) -> str | None:
    return None if value is None else str(value)


class Registry:
    def __init__(self, client: MlflowClient, name: str) -> None:
        self.client, self.name = client, name

    def exists(self) -> bool:
        # A search, not a get: with basic auth, getting a model that does not exist yet
        # answers 403 (no permission on a missing resource), not 404.
        found = self.client.search_registered_models(filter_string=f"name = '{self.name}'")
        return any(m.name == self.name for m in found)

    def alias(self, alias: str) -> ModelVersion | None:
        try:
            return self.client.get_model_version_by_alias(self.name, alias)
        except MlflowException as exc:
            if exc.error_code in _NOT_FOUND:
                return None
            if exc.error_code == "PERMISSION_DENIED" and not self.exists():
                return None
            raise

    def versions(self) -> list[ModelVersion]:
        found = self.client.search_model_versions(f"name = '{self.name}'")
        return sorted(found, key=lambda v: int(v.version))

    def version_with_tag(self, key: Tag, value: str) -> ModelVersion | None:
        return next((v for v in self.versions() if tag_of(v, key) == value), None)

    def newest_judged(self) -> ModelVersion | None:
        return next((v for v in reversed(self.versions()) if tag_of(v, Tag.DECISION)), None)

    def register(self, model_uri: str, run_id: str, model_digest: str) -> ModelVersion:
        if not self.exists():
            self.client.create_registered_model(self.name)
        tags = tag_values({Tag.MODEL_DIGEST: model_digest})
        # A server (not SQLite) insists on the logged model's id for a models:/m-… source.
        model_id = (
            model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
        )
        return self.client.create_model_version(
            self.name, model_uri, run_id=run_id, tags=tags, model_id=model_id
        )

    def mark_challenger(self, version: str) -> None:
        self.client.set_registered_model_alias(self.name, CHALLENGER, version)

    def tag(self, version: str, values: Mapping[Tag, object]) -> None:
        for key, value in tag_values(values).items():
            self.client.set_model_version_tag(self.name, version, key, value)

    def _move_tags(self) -> dict[str, str]:
        tags = self.client.get_registered_model(self.name).tags
        return {k: v for k, v in tags.items() if k.startswith(ALIAS_MOVE_PREFIX)}

    def moves(self, tags: dict[str, str] | None = None) -> list[AliasMove]:
        """Every alias move on record (in `tags`, default: the store's), oldest first."""
        tags = self._move_tags() if tags is None else tags
        found = [AliasMove.parse(k, v) for k, v in tags.items()]
        return sorted((m for m in found if m is not None), key=lambda m: m.number)

    def record_move(
        self, kind: str, before: str | None, after: str, why: str, when: str | None = None
    ) -> AliasMove | None:
        """Put the champion's move before → after on record, unless it is the last move on
        record already: a repair completing a move whose record was written before the
        process stopped must not record it twice. Returns the move written, if any.

        Numbered after the highest number on record. Two writers could pick the same
        number, but every caller holds the retrain lock (retrain/lock.py) while it moves
        aliases, so the writers of one project are sequential."""
        if before == after:
            return None
        tags = self._move_tags()
        last = next((m for m in reversed(self.moves(tags)) if m.alias == CHAMPION), None)
        if last is not None and (last.before, last.after) == (before, after):
            return None
        # After every tag of a move, readable or not: an unreadable one is never overwritten.
        number = max((_number(k) for k in tags), default=0) + 1
        move = AliasMove(number, _utc_of(when), CHAMPION, before, after, who(), why, kind)
        self.client.set_registered_model_tag(self.name, move.key(), move.value())
        return move

    def promote(self, version: str, replaces: str | None, repairing: str | None = None) -> None:
        """Make `version` champion and `replaces` (the champion before) previous-champion.
        The move goes on record first, why: the version's decision (`repairing`: what a
        repair completes, a move of kind REPAIR)."""
        if replaces is not None and replaces != version:
            self.tag(version, {Tag.REPLACED_VERSION: replaces})
        reason = tag_of(self.client.get_model_version(self.name, version), Tag.REASON)
        kind = REPAIR if repairing else (FIRST if replaces is None else PROMOTE)
        why = f"{repairing}; its decision: {reason}" if repairing else reason
        self.record_move(kind, replaces, version, why)
        if replaces is not None and replaces != version:
            self.client.set_registered_model_alias(self.name, PREVIOUS, replaces)
        self.client.set_registered_model_alias(self.name, CHAMPION, version)

    def rollback(self, reason: str, when: str) -> tuple[str, str, str | None]:
        """champion ← previous-champion; return (from, to, new previous-champion)."""
        current, previous = self.alias(CHAMPION), self.alias(PREVIOUS)
        if current is None or previous is None:
            raise LookupError("needs both a champion and a previous-champion")
        old, new = str(current.version), str(previous.version)
        # On record first: a rollback stopped before its aliases moved is completed by repair.
        self.tag(old, {Tag.ROLLED_BACK: when, Tag.ROLLBACK_REASON: reason})
        self.tag(new, {Tag.RESTORED_BY_ROLLBACK: when, Tag.ROLLBACK_REASON: reason})
        # After the version tags, which make repair complete it: a move on record is one
        # that happened or that the next repair completes, never one that is forgotten.
        self.record_move(ROLLBACK, old, new, reason, when)
        return old, new, self._restore(previous, old)

    def _restore(self, version: ModelVersion, rolled_back: str) -> str | None:
        """Make `version` champion again; previous-champion becomes the version that it had
        replaced (the chain goes on), or none. Returns the new previous-champion."""
        self.client.set_registered_model_alias(self.name, CHAMPION, version.version)
        return self._previous_of(version, rolled_back)

    def _previous_of(self, champion: ModelVersion, rolled_back: str | None = None) -> str | None:
        before = tag_of(champion, Tag.REPLACED_VERSION) or None
        if before is not None and before not in (str(champion.version), rolled_back):
            self.client.set_registered_model_alias(self.name, PREVIOUS, before)
            return before
        if self.alias(PREVIOUS) is not None:
            self.client.delete_registered_model_alias(self.name, PREVIOUS)
        return None

    def repair(self) -> list[str]:
        """Complete a rollback or promotion that a killed process left half done (its
        record written, the aliases not yet all moved); say what was repaired."""
        repaired = []
        champion = self.alias(CHAMPION)
        if champion is not None and tag_of(champion, Tag.ROLLED_BACK):
            repaired += self._complete_rollback(champion)
            champion = self.alias(CHAMPION)
        pending = self._pending_promotion(champion)
        if pending is not None:
            before = str(champion.version) if champion is not None else None
            replaces = tag_of(pending, Tag.REPLACED_VERSION) or before
            said = (
                f"completed the promotion of v{pending.version}: champion v{pending.version}, "
                f"previous-champion {_named(replaces)}"
            )
            self.promote(str(pending.version), replaces, repairing=said)
            repaired.append(said)
            champion = self.alias(CHAMPION)
        previous = self.alias(PREVIOUS)
        if champion is not None and previous is not None and previous.version == champion.version:
            now = self._previous_of(champion)
            repaired.append(
                f"previous-champion was v{champion.version}, the champion itself: now {_named(now)}"
            )
        return repaired

    def _complete_rollback(self, old: ModelVersion) -> list[str]:
        new = self.alias(PREVIOUS)
        if new is None or new.version == old.version:
            target = tag_of(old, Tag.REPLACED_VERSION)
            new = self.client.get_model_version(self.name, target) if target else None
        if new is None:
            return []  # nothing to roll back to: a rollback never starts so
        # Its second tag, in case the rollback stopped between the two.
        when, reason = tag_of(old, Tag.ROLLED_BACK), tag_of(old, Tag.ROLLBACK_REASON)
        self.tag(str(new.version), {Tag.RESTORED_BY_ROLLBACK: when, Tag.ROLLBACK_REASON: reason})
        said = f"completed the rollback of v{old.version}: champion v{new.version}"
        # Recorded already where the rollback stopped after its own record (then skipped).
        self.record_move(REPAIR, str(old.version), str(new.version), f"{said}; reason: {reason}")
        now = self._restore(new, str(old.version))
        return [f"{said}, previous-champion {_named(now)}"]

    def _pending_promotion(self, champion: ModelVersion | None) -> ModelVersion | None:
        """The newest version on record as promoted, not rolled back, and newer than the
        champion: its promotion was stopped before the aliases moved."""
        newest = int(champion.version) if champion is not None else 0
        return next(
            (
                v
                for v in reversed(self.versions())
                if int(v.version) > newest
                and tag_of(v, Tag.DECISION) == PROMOTED
                and not tag_of(v, Tag.ROLLED_BACK)
            ),
            None,
        )

    def uri(self, version: str) -> str:
        return f"models:/{self.name}/{version}"


def _named(version: str | None) -> str:
    return f"v{version}" if version else "none"
