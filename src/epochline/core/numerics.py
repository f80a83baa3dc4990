"""CPU numerics, chosen before torch loads: the same bits on any x86-64 CPU, or the fastest.

torch picks its kernels by the CPU's instruction set (SSE4.2, AVX2, AVX-512) and MKL its
code path the same way; sums split over threads add in another order. Each gives other
last bits, so a model trained on one machine would not be the same bytes on another.

- `portable` (the default): torch's baseline kernels (`ATEN_CPU_CAPABILITY=default`),
  MKL's one compatible code path (`MKL_CBWR=COMPATIBLE`), and one thread for torch's math
  while training and scoring (`one_thread`). Same params, data and code: same bytes on
  any CPU with any core count.
- `fast` (`train.numerics: fast`, the train stage only): torch and MKL choose by the CPU
  and use every core. Bit-for-bit repeatable on the same machine only.

torch reads these variables once, when it loads, and MKL at its first call: so the
package applies `portable` when it is imported (every entry point imports it before
torch), and the train stage switches to `fast` before it imports torch. Stdlib only: the
package's import must stay cheap.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

Numerics = Literal["portable", "fast"]
PORTABLE: Numerics = "portable"
FAST: Numerics = "fast"
MODES: tuple[Numerics, ...] = (PORTABLE, FAST)

# The same values as serving.PORTABLE_CPU, which the logged model applies by itself (it
# imports nothing from epochline); a test keeps the two equal.
PORTABLE_CPU = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}
ACTIVE = "EPOCHLINE_NUMERICS"  # which one this process (and its children) set up
_BEFORE = "EPOCHLINE_CPU_ENV_BEFORE"  # the variables as they were, for `fast` to restore


class NumericsError(RuntimeError):
    """torch loaded before the numerics were chosen: a bug in an entry point."""


def select(mode: Numerics) -> None:
    """Set torch's and MKL's variables for `mode`, before torch loads.

    Once torch is loaded they cannot change; asking for other numerics then is an error.
    """
    if "torch" in sys.modules:
        if active() != mode:
            raise NumericsError(
                f"numerics '{mode}' asked for after torch loaded with '{active() or 'its own'}'"
            )
        return
    before = os.environ.get(_BEFORE)
    saved = json.loads(before) if before else {k: os.environ.get(k) for k in PORTABLE_CPU}
    os.environ[_BEFORE] = json.dumps(saved)
    for key, value in PORTABLE_CPU.items():
        wanted = value if mode == PORTABLE else saved.get(key)
        if wanted is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = wanted
    os.environ[ACTIVE] = mode


def active() -> str | None:
    return os.environ.get(ACTIVE)


def check(mode: Numerics) -> None:
    """Fail loudly if torch did not load with `mode`'s kernels (it loaded first)."""
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    if mode == PORTABLE and (active() != PORTABLE or capability != "DEFAULT"):
        raise NumericsError(
            f"portable numerics need torch's baseline kernels, but torch loaded with "
            f"{capability} (imported before epochline?)"
        )


def math_threads(mode: str | None) -> int:
    """The threads torch's math uses while training and scoring under `mode`."""
    import torch

    return 1 if mode == PORTABLE else torch.get_num_threads()


@contextmanager
def one_thread(mode: Numerics) -> Iterator[None]:
    """torch's math on one thread under `portable`: a sum split over threads adds in another
    order, and MKL splits a product's sums by the thread count. The caller's count returns."""
    import torch

    if mode != PORTABLE:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
