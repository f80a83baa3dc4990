"""The MLflow model registry: versions, the champion/challenger aliases, decision tags."""

from __future__ import annotations

from typing import Any

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous-champion"
TAG_PREFIX = "epochline."
# What a missing model or alias looks like; anything else (a server error) must surface.
_NOT_FOUND = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}


def tag_values(values: dict[str, Any], prefix: str = TAG_PREFIX) -> dict[str, str]:
    return {f"{prefix}{k}": "" if v is None else str(v) for k, v in values.items()}


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

    def version_with_tag(self, key: str, value: str) -> ModelVersion | None:
        tag = f"{TAG_PREFIX}{key}"
        return next((v for v in self.versions() if v.tags.get(tag) == value), None)

    def register(self, model_uri: str, run_id: str, model_digest: str) -> ModelVersion:
        if not self.exists():
            self.client.create_registered_model(self.name)
        tags = tag_values({"model_digest": model_digest})
        # A server (not SQLite) insists on the logged model's id for a models:/m-… source.
        model_id = (
            model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
        )
        return self.client.create_model_version(
            self.name, model_uri, run_id=run_id, tags=tags, model_id=model_id
        )

    def mark_challenger(self, version: str) -> None:
        self.client.set_registered_model_alias(self.name, CHALLENGER, version)

    def tag(self, version: str, values: dict[str, Any]) -> None:
        for key, value in tag_values(values).items():
            self.client.set_model_version_tag(self.name, version, key, value)

    def promote(self, version: str) -> None:
        """Make `version` champion; the old champion becomes previous-champion."""
        old = self.alias(CHAMPION)
        if old is not None:
            self.client.set_registered_model_alias(self.name, PREVIOUS, old.version)
            self.tag(version, {"replaced_version": old.version})
        self.client.set_registered_model_alias(self.name, CHAMPION, version)

    def rollback(self) -> tuple[str, str, str | None]:
        """champion ← previous-champion; return (from, to, new previous-champion)."""
        current, previous = self.alias(CHAMPION), self.alias(PREVIOUS)
        if current is None or previous is None:
            raise LookupError("needs both a champion and a previous-champion")
        self.client.set_registered_model_alias(self.name, CHAMPION, previous.version)
        # The chain goes on: the version that `previous` itself had replaced, if any.
        before = previous.tags.get(f"{TAG_PREFIX}replaced_version") or None
        if before and before != current.version:
            self.client.set_registered_model_alias(self.name, PREVIOUS, before)
        else:
            self.client.delete_registered_model_alias(self.name, PREVIOUS)
            before = None
        return str(current.version), str(previous.version), before

    def uri(self, version: str) -> str:
        return f"models:/{self.name}/{version}"
