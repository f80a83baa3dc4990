"""A missing system tool skips a test here and fails it where the run requires the tool."""

from __future__ import annotations

import pytest

from tests.conftest import REQUIRE, missing_tool


def test_a_missing_tool_skips_where_nothing_requires_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE, raising=False)
    with pytest.raises(pytest.skip.Exception, match="chromium is missing"):
        missing_tool("chromium", "apt-get install chromium")


def test_a_missing_tool_fails_where_the_run_requires_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE, "chromium, postgres,systemd-analyze")
    with pytest.raises(pytest.fail.Exception) as failed:
        missing_tool("postgres", "apt-get install postgresql")
    assert str(failed.value) == (
        "postgres is missing and EPOCHLINE_REQUIRE=chromium, postgres,systemd-analyze "
        "requires it: apt-get install postgresql"
    )


def test_only_the_named_tools_are_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE, "postgres")
    with pytest.raises(pytest.skip.Exception):
        missing_tool("systemd-analyze", "apt-get install systemd")
