"""Errors that reach users: each message names the problem and the fix."""


class InputError(ValueError):
    """Bad input from a user (a file, a parameter); the message says what to change."""
