"""Exceptions that mean "the user can fix this": reported as one line, no traceback."""


class UserError(Exception):
    """A mistake in params, data or invocation. The message says what, where and what is allowed."""

    exit_code = 2


class TrackingUnavailable(UserError):
    """The configured MLflow tracking store cannot be reached."""
