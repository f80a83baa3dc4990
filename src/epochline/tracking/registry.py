"""The MLflow model registry: versions, the champion/challenger aliases, the tags on record.

A promotion or rollback writes its record (tags) first and moves the aliases last; a
process killed in between leaves a record that `repair` completes.
"""

from __future__ import annotations

from collections.abc import Mapping

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from epochline.tracking.tags import PROMOTED, Tag, tag_name, tag_values

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous-champion"
# What a missing model or alias looks like; anything else (a server error) must surface.
_NOT_FOUND = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}


def tag_of(version: ModelVersion, key: Tag) -> str:
    return str(version.tags.get(tag_name(key), ""))


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

    def promote(self, version: str, replaces: str | None) -> None:
        """Make `version` champion and `replaces` (the champion before) previous-champion."""
        if replaces is not None and replaces != version:
            self.tag(version, {Tag.REPLACED_VERSION: replaces})
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
            self.promote(str(pending.version), replaces)
            repaired.append(
                f"completed the promotion of v{pending.version}: champion v{pending.version}, "
                f"previous-champion {_named(replaces)}"
            )
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
        now = self._restore(new, str(old.version))
        return [
            f"completed the rollback of v{old.version}: champion v{new.version}, "
            f"previous-champion {_named(now)}"
        ]

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
