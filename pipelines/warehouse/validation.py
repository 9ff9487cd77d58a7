"""The rules a short-interest row must meet to be stored, in one place.

Every row of a batch is checked before anything is written, so a bad batch leaves the warehouse
untouched and the error names the first bad row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, timedelta
from operator import attrgetter

from pipelines.warehouse.errors import InvalidRowError
from proto_client.errors import InvalidCodeError
from proto_client.publication import CALENDAR_END, CALENDAR_START
from proto_client.records import HkShortInterestRow, ShortInterestRow, UsShortInterestRow, trade_date_of
from proto_client.security import Market, parse_code

BIGINT_MAX = 2**63 - 1

# Fields of the row dataclasses by kind; percentages above 100 are allowed (US short interest can exceed the float).
COUNT_FIELDS: dict[Market, tuple[str, ...]] = {
    Market.US: ("avg_daily_share_volume", "shares_short"),
    Market.HK: ("aggregated_short",),
}
FLOAT_FIELDS: dict[Market, tuple[str, ...]] = {
    Market.US: ("close_price", "days_to_cover", "last_close_price", "short_percent"),
    Market.HK: ("aggregated_short_ratio", "close_price", "last_close_price"),
}
_ROW_TYPES = (UsShortInterestRow, HkShortInterestRow)
# The newest trade date whose publication day the calendars reach (a report is out within three weeks).
PUBLISHED_BY = CALENDAR_END - timedelta(days=31)


def checked_batch(rows: Sequence[ShortInterestRow]) -> tuple[Market, list[ShortInterestRow]]:
    """The batch's one market and its rows in key order (the lock order), once every row passed.

    Raises InvalidRowError for the first bad row: a foreign or other-market row, a row `check_row`
    refuses, or a key that appears twice.
    """
    market = _market_of_batch(rows)
    seen: set[tuple[str, date]] = set()
    for row in rows:
        check_row(row, market)
        key = (row.code, row.trade_date)
        if key in seen:
            raise InvalidRowError(row.code, row.trade_date, "appears twice in one batch (duplicate key)")
        seen.add(key)
    return market, sorted(rows, key=attrgetter("code", "trade_date"))


def _market_of_batch(rows: Sequence[ShortInterestRow]) -> Market:
    first = rows[0]
    for row in rows:
        if type(row) not in _ROW_TYPES:
            raise InvalidRowError(
                getattr(row, "code", None),
                getattr(row, "trade_date", None),
                f"expected UsShortInterestRow or HkShortInterestRow, got {type(row).__name__}",
            )
        if type(row) is not type(first):
            raise InvalidRowError(
                row.code,
                row.trade_date,
                f"batch mixes markets (a {first.market.prefix} row for {first.code} and a {row.market.prefix} "
                "row); upsert one market per call",
            )
    return first.market


def check_row(row: ShortInterestRow, market: Market) -> None:
    """Raise InvalidRowError if this one row must not be stored."""
    code, trade_date, timestamp = row.code, row.trade_date, row.timestamp
    day = trade_date if type(trade_date) is date else None
    try:
        security = parse_code(code)
    except InvalidCodeError as exc:
        raise InvalidRowError(code, day, f"code: {exc.reason}") from None
    if type(code) is not str:  # a str subclass parses, but drivers and comparisons want exactly str
        raise InvalidRowError(code, day, f"code is a {type(code).__name__}, not a str")
    if security.market is not market:
        raise InvalidRowError(
            code, day, f"code is a {security.market.prefix} security in a {market.prefix} short-interest row"
        )
    if day is None:
        raise InvalidRowError(code, None, f"trade_date = {trade_date!r} is not a date")
    if not CALENDAR_START <= day <= PUBLISHED_BY:
        # Its publication day (published_on) would be outside the trading calendars.
        raise InvalidRowError(
            code, day, f"trade_date is outside the publication calendar's span {CALENDAR_START} to {PUBLISHED_BY}"
        )
    if type(timestamp) is not int:
        raise InvalidRowError(code, day, f"timestamp = {timestamp!r} is not an integer")
    try:
        local_day = trade_date_of(timestamp, market)
    except (OverflowError, OSError, ValueError):
        raise InvalidRowError(code, day, f"timestamp = {timestamp} is out of range") from None
    if local_day != day:
        raise InvalidRowError(
            code, day, f"timestamp = {timestamp} is {local_day.isoformat()} in {market.tz_name}, not the trade_date"
        )
    for name in COUNT_FIELDS[market]:
        value = getattr(row, name)
        if value is None:
            continue
        if type(value) is not int:
            raise InvalidRowError(code, day, f"{name} = {value!r} is not an integer count")
        if value < 0:
            raise InvalidRowError(code, day, f"{name} = {value} is negative")
        if value > BIGINT_MAX:
            raise InvalidRowError(code, day, f"{name} = {value} exceeds the BIGINT maximum {BIGINT_MAX}")
    for name in FLOAT_FIELDS[market]:
        value = getattr(row, name)
        if value is not None and (type(value) not in (float, int) or not _finite(value)):
            raise InvalidRowError(code, day, f"{name} = {value!r} is not a finite number")


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a double
        return False
