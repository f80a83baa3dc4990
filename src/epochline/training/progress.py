"""Per-epoch progress: a bar in a terminal, plain log lines when output is not a TTY."""

from __future__ import annotations

import logging
import sys
from types import TracebackType
from typing import TYPE_CHECKING

from tqdm import tqdm

if TYPE_CHECKING:  # a type only: importing it would pull torch in for a progress bar
    from epochline.training.model import EpochMetrics

log = logging.getLogger("epochline.train")


class EpochProgress:
    def __init__(self, epochs: int) -> None:
        self.epochs = epochs
        self.bar = tqdm(total=epochs, unit="epoch") if sys.stderr.isatty() else None

    def update(self, m: EpochMetrics) -> None:
        line = (
            f"train_loss={m.train_loss:.4f} train_acc={m.train_accuracy:.3f} "
            f"val_loss={m.val_loss:.4f} val_acc={m.val_accuracy:.3f}"
        )
        if self.bar is not None:
            self.bar.set_postfix_str(line, refresh=False)
            self.bar.update(1)
        else:
            log.info("epoch %d/%d %s", m.epoch, self.epochs, line)

    def __enter__(self) -> EpochProgress:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self.bar is not None:
            self.bar.close()
