"""Errors the warehouse raises; each message names the database, row or setting at fault."""

from __future__ import annotations

from datetime import date


class WarehouseError(Exception):
    """Base class of everything the warehouse package raises on purpose."""


class WarehouseUrlError(WarehouseError, ValueError):
    """SHORTINTEREST_DATABASE_URL cannot be used; the message shows the URL with its password masked."""


class WarehouseNotMigratedError(WarehouseError, RuntimeError):
    """The database schema is not at the revision this code expects.

    Raised before any work starts, so a job never half-runs against an old or missing schema.
    """

    def __init__(self, database: str, current: str | None, expected: str, *, unknown: bool = False) -> None:
        self.database = database
        self.current = current
        self.expected = expected
        shown = "empty (no schema)" if current is None else f"revision {current!r}"
        if unknown:
            advice = "it was migrated by a newer version of shortinterest; upgrade the software"
        else:
            advice = "run `shortinterest migrate`"
        super().__init__(f"warehouse {database} is {shown}, expected revision {expected!r}: {advice}")


class InvalidRowError(WarehouseError, ValueError):
    """A row refused by validation; nothing of its batch was written."""

    def __init__(self, code: object, trade_date: date | None, problem: str) -> None:
        self.code = code
        self.trade_date = trade_date
        self.problem = problem
        when = trade_date.isoformat() if isinstance(trade_date, date) else repr(trade_date)
        super().__init__(f"invalid short-interest row {code} {when}: {problem}")
