"""How a failure is put to a person: one line, the command's name first on the command line."""

from __future__ import annotations

import sys


def first_line(exc: BaseException) -> str:
    """The error's first line; for a database error the driver's own words, not the statement SQLAlchemy adds."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def fail(command: str, message: str, status: int) -> int:
    """Print `command: message` on stderr and return `status`, the command's exit code."""
    print(f"{command}: {message}", file=sys.stderr)
    return status
