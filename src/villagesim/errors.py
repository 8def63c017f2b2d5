"""Errors that speak to a planner.

Every error a user can cause (a bad scenario file, an unknown lever, a missing file)
is a :class:`VillagesimError`. The command line prints ``str(error)`` on one line and
exits non-zero, without a traceback. Programming errors stay ordinary exceptions.
"""

from __future__ import annotations

from pathlib import Path


class VillagesimError(Exception):
    """A user-facing error whose message fits on one line."""


class ScenarioError(VillagesimError):
    """A scenario (or experiment) file is wrong.

    Args:
        message: what is wrong and what was expected.
        file: the file the problem is in, if known.
        line: 1-based line number in ``file``, if it can be found.
        field: dotted path of the offending field (``behaviour.ask_trust``), if any.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = " ".join(str(message).split())
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        field = f"{self.field}: " if self.field else ""
        return f"{where}{field}{self.message}"
