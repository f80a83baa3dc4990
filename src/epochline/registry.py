"""The MLflow model registry: versions, the champion/challenger aliases, decision tags."""

from __future__ import annotations

from typing import Any

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous-champion"
TAG_PREFIX = "epochline."


def _tags(values: dict[str, Any]) -> dict[str, str]:
    return {f"{TAG_PREFIX}{k}": "" if v is None else str(v) for k, v in values.items()}


class Registry:
    def __init__(self, client: MlflowClient, name: str) -> None:
        self.client, self.name = client, name

    def alias(self, alias: str) -> ModelVersion | None:
        try:
            return self.client.get_model_version_by_alias(self.name, alias)
        except MlflowException:
            return None  # no such registered model or alias

    def versions(self) -> list[ModelVersion]:
        try:
            found = self.client.search_model_versions(f"name = '{self.name}'")
        except MlflowException:
            return []
        return sorted(found, key=lambda v: int(v.version))

    def version_of_run(self, run_id: str) -> ModelVersion | None:
        return next((v for v in self.versions() if v.run_id == run_id), None)

    def register(self, model_uri: str, run_id: str) -> ModelVersion:
        try:
            self.client.get_registered_model(self.name)
        except MlflowException:
            self.client.create_registered_model(self.name)
        version = self.client.create_model_version(self.name, model_uri, run_id=run_id)
        self.client.set_registered_model_alias(self.name, CHALLENGER, version.version)
        return version

    def tag(self, version: str, values: dict[str, Any]) -> None:
        for key, value in _tags(values).items():
            self.client.set_model_version_tag(self.name, version, key, value)

    def promote(self, version: str) -> str | None:
        """Make `version` champion; the old champion becomes previous-champion."""
        old = self.alias(CHAMPION)
        if old is not None:
            self.client.set_registered_model_alias(self.name, PREVIOUS, old.version)
            self.tag(version, {"replaced_version": old.version})
        self.client.set_registered_model_alias(self.name, CHAMPION, version)
        return old.version if old is not None else None

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
        return current.version, previous.version, before

    def uri(self, version: str) -> str:
        return f"models:/{self.name}/{version}"
