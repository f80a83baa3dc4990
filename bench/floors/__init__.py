"""The floors: each the simplest program doing a stage's work, run as its own process.

Run in the project directory as `python -m bench.floors.<module> ...`; each writes what it
measured from the inside (if anything) as JSON to the path given by `--report`.

They run under the numerics the suite names in BENCH_NUMERICS (portable by default),
chosen here, before any floor imports torch, as the train stage chooses its own.
"""

import os

from epochline.core import numerics

numerics.select(numerics.FAST if os.environ.get("BENCH_NUMERICS") == "fast" else numerics.PORTABLE)
