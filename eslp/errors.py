"""The exception for faults a user can fix: a bad input file or a bad parameter."""


class ESLPError(Exception):
    """A user error, reported by the stage entry point as one message without a traceback.

    The message names what is wrong, where (file and line, or params key), the offending
    value and what to do about it.
    """


def shorten(value: object, limit: int = 60) -> str:
    """Return ``repr(value)``, cut to ``limit`` characters so one bad field cannot flood a message."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return text[: limit - 3] + "..."
