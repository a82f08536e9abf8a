"""Errors the command line turns into one line on stderr instead of a traceback."""


class UsageError(Exception):
    """Something the user asked for or handed us is wrong or unavailable (exit status 2).

    The message is one line that says what was expected, what was received and, where there is one,
    what to do instead.
    """


class SearchFailed(Exception):
    """The search ran but produced nothing usable, e.g. every trial failed (exit status 1)."""
