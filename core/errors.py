"""Errors that reach users: each message names the problem and the fix."""


class InputError(ValueError):
    """Bad input from a user (a file, a parameter); the message says what to change."""


class Canceled(Exception):  # noqa: N818 (it is not an error: the user asked for it)
    """Raised inside long jobs when their `is_canceled()` callback returns True."""
