"""One module per DVC stage: thin scripts around the domain modules."""

import gc
import sys

# A stage is a short batch process that spends most of its start importing torch, MLflow,
# pandas: Python's cycle collector runs thousands of times through those imports (a quarter
# of their time) and finds nothing to free. So, only when a stage runs as a script
# (`python -m`: sys.argv[0] is "-m" while its packages import), it is off until the work
# begins: runner.run_main turns it back on, with what was imported frozen out of its scans.
if sys.argv[:1] == ["-m"]:
    gc.disable()
