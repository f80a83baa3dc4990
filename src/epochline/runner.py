"""What every entry point does around its work: logging, clean errors, signals."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import NoReturn

from epochline.errors import UserError

log = logging.getLogger("epochline")


def setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


def _terminate(signum: int, _frame: FrameType | None) -> NoReturn:
    # Raising lets `with mlflow.start_run()` close the run as FAILED instead of leaving it
    # RUNNING forever, which is what a bare SIGTERM (scheduler timeout, Ctrl-C in DVC) does.
    raise SystemExit(128 + signum)


def handle_sigterm() -> None:
    signal.signal(signal.SIGTERM, _terminate)


def run_main(main: Callable[[], int | None]) -> NoReturn:
    """Run `main`; a UserError becomes one line on stderr and a non-zero exit."""
    setup_logging()
    handle_sigterm()
    try:
        code = main() or 0
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        code = 130
    except Exception as exc:
        line = service_failure(exc)
        if line is None:
            raise  # a bug: the traceback is what a developer needs
        print(f"error: {line}", file=sys.stderr)
        code = 1
    sys.exit(code)


# Failures of the services a stage talks to (the tracking server, its HTTP client): the
# user fixes the service or the settings, so one line, not a traceback.
_SERVICE_MODULES = ("mlflow.", "requests.", "urllib3.")


def service_failure(exc: Exception) -> str | None:
    """The one line for a failed call to a service; None for anything else (a bug)."""
    if not type(exc).__module__.startswith(_SERVICE_MODULES):
        return None
    from epochline.tracking import describe_failure, tracking_uri  # mlflow is loaded by now

    return describe_failure(exc, tracking_uri())
