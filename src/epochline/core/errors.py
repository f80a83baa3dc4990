"""Exceptions reported as one line, no traceback; each kind's exit code; an exception's first line.

Exit codes, the same for every stage and command (runner.guard applies them):
0 done; 1 a failure (a tool, a service, a retrain); 2 a user error (params, data,
arguments); 75 skipped: another retrain holds the lock; 130 Ctrl-C; 143 SIGTERM.
"""

DONE, FAILED, USER_ERROR, LOCK_BUSY = 0, 1, 2, 75
INTERRUPTED, TERMINATED = 130, 143  # 128 + SIGINT, 128 + SIGTERM, as shells report them


class UserError(Exception):
    """A mistake in params, data or invocation. The message says what, where and what is allowed.

    The base of every error reported as one line; a subclass's exit_code says what kind.
    """

    exit_code = USER_ERROR


class Failed(UserError):
    """Something the user did not get wrong failed: a tool, a service, a retrain."""

    exit_code = FAILED


class Skipped(UserError):
    """Not done, and not a failure: a scheduler may simply try again later."""

    exit_code = LOCK_BUSY


class TrackingUnavailable(Failed):
    """The configured MLflow tracking store cannot be reached."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of `exc`'s message (its type's name when it has none), cut at `limit`."""
    lines = str(exc).splitlines()
    return (lines[0] if lines else type(exc).__name__)[:limit]
