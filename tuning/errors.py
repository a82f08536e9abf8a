"""Errors the command line turns into one line on stderr instead of a traceback."""

from __future__ import annotations

import string


class UsageError(ValueError):
    """Something the user asked for or handed us is wrong or unavailable (exit status 2).

    The message is one line that says what was expected, what was received and, where there is one,
    what to do instead.
    """


class ConfigError(UsageError):
    """A `SearchConfig` setting the search cannot use; `field` names it.

    The message is a template naming settings as `{field_name}`: in Python it reads with the
    field names (`factor must be an integer >= 2`), and `for_command_line()` with their flags
    (`--factor must be ...`), which the CLI prints.
    """

    def __init__(self, template: str):
        self.template = template
        self.fields = [name for _, name, _, _ in string.Formatter().parse(template) if name]
        self.field = self.fields[0]
        super().__init__(template.format(**{name: name for name in self.fields}))

    def for_command_line(self) -> str:
        return self.template.format(**{name: "--" + name.replace("_", "-") for name in self.fields})


class SearchFailed(Exception):
    """The search ran but produced nothing usable, e.g. every trial failed (exit status 1)."""
