"""The SIGTERM handler of every stage and command, with real signals to this process."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from epochline.core import runner


@pytest.fixture
def handler() -> Iterator[None]:
    before = signal.getsignal(signal.SIGTERM)
    runner.handle_sigterm()
    yield
    signal.signal(signal.SIGTERM, before)
    runner._deferred = None


def test_sigterm_raises_143_once_and_a_second_is_ignored(handler: None) -> None:
    with pytest.raises(SystemExit) as stopped:
        os.kill(os.getpid(), signal.SIGTERM)
    assert stopped.value.code == 143
    os.kill(os.getpid(), signal.SIGTERM)  # the cleanup the first one started goes on


def test_a_shielded_block_finishes_then_the_sigterm_takes_effect(handler: None) -> None:
    done = []
    with pytest.raises(SystemExit) as stopped, runner.shielded():
        os.kill(os.getpid(), signal.SIGTERM)
        done.append("the store's call")
    assert done == ["the store's call"] and stopped.value.code == 143


def test_a_shielded_block_without_a_signal_is_transparent(handler: None) -> None:
    with runner.shielded():
        pass
    with pytest.raises(SystemExit):
        os.kill(os.getpid(), signal.SIGTERM)
