"""epochline: a reproducible, experiment-tracked training pipeline."""

import sys

from epochline.core import numerics as _numerics

__version__ = "0.1.0"

# The one thing done at import, on purpose: torch and MKL read their CPU settings once,
# when they load, and every entry point (a stage under DVC, torchrun's processes, the
# `epochline` command, a test) imports this package before torch. See numerics.py.
if "torch" not in sys.modules:
    _numerics.select(_numerics.PORTABLE)
