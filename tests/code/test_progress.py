"""Per-epoch progress: log lines when stderr is a file or pipe, a bar on a terminal."""

from __future__ import annotations

import fcntl
import logging
import os
import select
import struct
import sys
import termios

import pytest

from epochline.training.model import EpochMetrics
from epochline.training.progress import EpochProgress

EPOCH = EpochMetrics(
    epoch=2, train_loss=0.51234, train_accuracy=0.7506, val_loss=0.49876, val_accuracy=0.8004
)
LINE = "train_loss=0.5123 train_acc=0.751 val_loss=0.4988 val_acc=0.800"


def _read_all(fd: int) -> str:
    """What was written to the terminal so far (a read returns one chunk at a time)."""
    chunks = []
    while select.select([fd], [], [], 1)[0]:
        chunks.append(os.read(fd, 65536))
    return b"".join(chunks).decode()


def test_without_a_terminal_each_epoch_is_one_log_line(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open(os.devnull, "w") as devnull:
        monkeypatch.setattr(sys, "stderr", devnull)  # a file: what DVC and schedulers give
        with caplog.at_level(logging.INFO, "epochline.train"), EpochProgress(30) as progress:
            assert progress.bar is None
            progress.update(EPOCH)
    assert caplog.messages == [f"epoch 2/30 {LINE}"]


def test_on_a_terminal_a_bar_counts_the_epochs(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    main, side = os.openpty()  # a real terminal, as a person's shell has
    # 160 columns: a new pseudo-terminal is 0 wide, and tqdm fits its bar into 0.
    fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    terminal = os.fdopen(side, "w")
    try:
        monkeypatch.setattr(sys, "stderr", terminal)
        with caplog.at_level(logging.INFO, "epochline.train"), EpochProgress(30) as progress:
            assert progress.bar is not None
            progress.update(EPOCH)
            progress.update(EPOCH)
            assert progress.bar.n == 2
        terminal.flush()
        shown = _read_all(main)
    finally:
        terminal.close()
        os.close(main)
    assert "2/30" in shown and LINE in shown
    assert caplog.messages == []  # the bar, not log lines as well
