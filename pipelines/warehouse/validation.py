"""Row checks that run before anything is written, so a bad batch leaves the warehouse untouched."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

from pipelines.warehouse.errors import InvalidRowError
from proto_client.errors import InvalidCodeError
from proto_client.records import HkShortInterestRow, ShortInterestRow, UsShortInterestRow, trade_date_of
from proto_client.security import Market, parse_code

BIGINT_MAX = 2**63 - 1

COUNT_FIELDS: dict[Market, tuple[str, ...]] = {
    Market.US: ("shares_short", "avg_daily_share_volume"),
    Market.HK: ("aggregated_short",),
}
FLOAT_FIELDS: dict[Market, tuple[str, ...]] = {
    Market.US: ("short_percent", "days_to_cover", "close_price", "last_close_price"),
    Market.HK: ("aggregated_short_ratio", "close_price", "last_close_price"),
}


def market_of_batch(rows: Sequence[ShortInterestRow]) -> Market:
    """The one market of a non-empty batch; mixed or foreign row types are refused."""
    first = rows[0]
    for row in rows:
        if type(row) is not UsShortInterestRow and type(row) is not HkShortInterestRow:
            raise InvalidRowError(
                getattr(row, "code", None),
                getattr(row, "trade_date", None),
                f"expected UsShortInterestRow or HkShortInterestRow, got {type(row).__name__}",
            )
        if type(row) is not type(first):
            raise InvalidRowError(
                row.code,
                row.trade_date,
                f"batch mixes markets ({first.market.prefix} row {first.code} and {row.market.prefix} row); "
                "upsert one market per call",
            )
    return first.market


def validate_rows(rows: Sequence[ShortInterestRow], market: Market) -> None:
    """Raise InvalidRowError for the first row that must not be stored.

    Percentages above 100 are allowed: US short interest can exceed the float.
    """
    count_fields = COUNT_FIELDS[market]
    float_fields = FLOAT_FIELDS[market]
    good_codes: set[str] = set()
    dates_of: dict[int, date] = {}
    seen: set[tuple[str, date]] = set()
    for row in rows:
        code, trade_date, timestamp = row.code, row.trade_date, row.timestamp
        if code not in good_codes:
            _check_code(code, trade_date, market)
            good_codes.add(code)
        if type(trade_date) is not date:
            raise InvalidRowError(code, None, f"trade_date {trade_date!r} is not a date")
        if type(timestamp) is not int:
            raise InvalidRowError(code, trade_date, f"timestamp {timestamp!r} is not an integer")
        expected = dates_of.get(timestamp)
        if expected is None:
            expected = _date_of_timestamp(code, trade_date, timestamp, market)
            dates_of[timestamp] = expected
        if expected != trade_date:
            raise InvalidRowError(
                code,
                trade_date,
                f"timestamp {timestamp} is {expected.isoformat()} in {market.tz_name}, not the row's trade_date",
            )
        for name in count_fields:
            value = getattr(row, name)
            if value is not None and (type(value) is not int or not 0 <= value <= BIGINT_MAX):
                raise InvalidRowError(code, trade_date, _count_problem(name, value))
        for name in float_fields:
            value = getattr(row, name)
            if value is not None and (type(value) not in (float, int) or not math.isfinite(value)):
                raise InvalidRowError(code, trade_date, f"{name} = {value!r} is not a finite number")
        key = (code, trade_date)
        if key in seen:
            raise InvalidRowError(code, trade_date, "appears twice in one batch")
        seen.add(key)


def _check_code(code: object, trade_date: object, market: Market) -> None:
    day = trade_date if isinstance(trade_date, date) else None
    try:
        security = parse_code(code)
    except InvalidCodeError as exc:
        raise InvalidRowError(code, day, f"code: {exc.reason}") from None
    if security.market is not market:
        raise InvalidRowError(
            code, day, f"code is a {security.market.prefix} security in a {market.prefix} short-interest row"
        )


def _date_of_timestamp(code: str, trade_date: date, timestamp: int, market: Market) -> date:
    try:
        return trade_date_of(timestamp, market)
    except (OverflowError, OSError, ValueError):
        raise InvalidRowError(code, trade_date, f"timestamp {timestamp} is out of range") from None


def _count_problem(name: str, value: object) -> str:
    if type(value) is not int:
        return f"{name} = {value!r} is not an integer count"
    if value < 0:
        return f"{name} = {value} is negative"
    return f"{name} = {value} exceeds the BIGINT maximum {BIGINT_MAX}"
