"""Row checks that run before anything is written, so a bad batch leaves the warehouse untouched.

Batches of a million rows must validate in well under a second, so the checks run column-wise with
C-level builtins; only when one fails does a row-by-row pass find the first bad row and say what is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from itertools import islice
from operator import and_, attrgetter, eq, is_not, itemgetter, lt, or_
from typing import Any, NoReturn

import numpy as np
import numpy.typing as npt

from pipelines.warehouse.binary_copy import PG_EPOCH
from pipelines.warehouse.errors import InvalidRowError
from proto_client.errors import InvalidCodeError
from proto_client.records import HkShortInterestRow, ShortInterestRow, UsShortInterestRow, trade_date_of
from proto_client.security import Market, parse_code

BIGINT_MAX = 2**63 - 1
# Widest span of trade dates (about 110 years) for which a batch's local day boundaries are tabulated.
LOCAL_DAYS_MAX_SPAN = 40_000
# A table of this many days costs a few milliseconds: always worth it. Wider ones only for as many rows.
LOCAL_DAYS_ALWAYS = 1_000

# Fields of the row dataclasses by kind; percentages above 100 are allowed (US short interest can exceed the float).
COUNT_FIELDS: dict[Market, frozenset[str]] = {
    Market.US: frozenset({"shares_short", "avg_daily_share_volume"}),
    Market.HK: frozenset({"aggregated_short"}),
}
FLOAT_FIELDS: dict[Market, frozenset[str]] = {
    Market.US: frozenset({"short_percent", "days_to_cover", "close_price", "last_close_price"}),
    Market.HK: frozenset({"aggregated_short_ratio", "close_price", "last_close_price"}),
}
_ROW_TYPES = (UsShortInterestRow, HkShortInterestRow)
_NOT_NONE: Callable[[Any], bool] = partial(is_not, None)
_COUNT_TYPES = frozenset({int, type(None)})
_FLOAT_TYPES = frozenset({float, int, type(None)})


def market_of_batch(rows: Sequence[ShortInterestRow]) -> Market:
    """The one market of a non-empty batch; mixed or foreign row types are refused."""
    row_types = set(map(type, rows))
    if len(row_types) == 1 and next(iter(row_types)) in _ROW_TYPES:
        return rows[0].market
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
    raise AssertionError("unreachable")  # pragma: no cover


def sorted_valid_tuples(
    rows: Sequence[ShortInterestRow], fields: Sequence[str], market: Market
) -> list[tuple[Any, ...]]:
    """`rows` as tuples of `fields` (code, trade_date, timestamp first), sorted by key, after validating all.

    Raises InvalidRowError naming the first bad row.
    """
    if tuple(fields[:3]) != ("code", "trade_date", "timestamp"):
        raise ValueError(f"fields must start with code, trade_date, timestamp, got {fields!r}")
    tuples = list(map(attrgetter(*fields), rows))
    columns = [list(map(itemgetter(i), tuples)) for i in range(len(fields))]
    if _columns_ok(columns, fields, market):
        codes, dates = columns[0], columns[1]
        if _strictly_increasing(codes, dates):  # already in key order, hence also free of duplicates
            return tuples
        tuples.sort(key=itemgetter(0, 1))
        codes = list(map(itemgetter(0), tuples))
        dates = list(map(itemgetter(1), tuples))
        if _strictly_increasing(codes, dates):
            return tuples
    raise_first_invalid(rows, market)


def raise_first_invalid(rows: Sequence[ShortInterestRow], market: Market) -> NoReturn:
    """The row-by-row pass after a column check failed: raise InvalidRowError for the first bad row."""
    for row in rows:
        check_row(row, market)
    _check_unique(rows)
    raise AssertionError("column checks failed but no row was found invalid")  # pragma: no cover


def _strictly_increasing(codes: list[str], dates: list[date]) -> bool:
    """Whether the (code, trade_date) keys strictly increase, checked pairwise at C speed."""
    next_codes, next_dates = islice(codes, 1, None), islice(dates, 1, None)
    code_less = map(lt, codes, next_codes)
    code_equal_date_less = map(and_, map(eq, codes, islice(codes, 1, None)), map(lt, dates, next_dates))
    return all(map(or_, code_less, code_equal_date_less))


def _columns_ok(columns: list[list[Any]], fields: Sequence[str], market: Market) -> bool:
    codes, dates, stamps = columns[0], columns[1], columns[2]
    if set(map(type, codes)) != {str} or set(map(type, dates)) != {date} or set(map(type, stamps)) != {int}:
        return False
    if not all(code_ok(code, market) for code in set(codes)) or not stamps_match_dates(stamps, dates, market):
        return False
    for name, column in zip(fields[3:], columns[3:], strict=True):
        types = set(map(type, column))
        present = list(filter(_NOT_NONE, column)) if type(None) in types else column
        if name in COUNT_FIELDS[market]:
            if not types <= _COUNT_TYPES or (present and (min(present) < 0 or max(present) > BIGINT_MAX)):
                return False
        elif name in FLOAT_FIELDS[market] and (not types <= _FLOAT_TYPES or not _all_finite(present)):
            return False
    return True


def stamps_match_dates(stamps: Sequence[int], dates: Sequence[date], market: Market) -> bool:
    """Whether every timestamp is local midnight of its trade_date, converting each distinct pair once."""
    for stamp, day in set(zip(stamps, dates, strict=True)):
        try:
            if trade_date_of(stamp, market) != day:
                return False
        except (OverflowError, OSError, ValueError):
            return False
    return True


@dataclass(frozen=True, slots=True)
class LocalDays:
    """Where each local calendar day of a market begins, as Unix seconds, for a run of consecutive days.

    starts[i] is the first second of day `first + i` (days since 2000-01-01) and starts[i + 1] the first
    of the next, so the seconds of that day are one range. In both markets' zones clock changes happen in
    the small hours, never across midnight, which is what makes each local day one unbroken range.
    """

    first: int
    starts: npt.NDArray[np.int64]

    def contain(self, days: npt.NDArray[np.int32], stamps: npt.NDArray[np.int64]) -> bool:
        """Whether each of `stamps` falls on its day of `days`, as trade_date_of would say."""
        index = days.astype(np.int64) - self.first
        return bool(np.all((self.starts[index] <= stamps) & (stamps < self.starts[index + 1])))


def local_days(days: npt.NDArray[np.int32], market: Market) -> LocalDays | None:
    """The local day boundaries covering `days` (days since 2000-01-01), or None if they span too long.

    Too long is more days than LOCAL_DAYS_MAX_SPAN, or more than the rows to check (beyond a small table),
    where checking each distinct (timestamp, date) pair costs less. Each boundary is checked against
    trade_date_of, so the table never disagrees with the row-by-row check.
    """
    if not len(days):
        return None
    first, last = int(days.min()), int(days.max())
    if last - first > min(LOCAL_DAYS_MAX_SPAN, max(len(days), LOCAL_DAYS_ALWAYS)):
        return None
    starts = []
    try:
        for offset in range(first, last + 2):
            day = PG_EPOCH + timedelta(days=offset)
            start = int(datetime(day.year, day.month, day.day, tzinfo=market.tz).timestamp())
            if trade_date_of(start, market) != day or trade_date_of(start - 1, market) == day:
                return None
            starts.append(start)
    except (OverflowError, OSError, ValueError):
        return None
    return LocalDays(first, np.array(starts, dtype=np.int64))


def code_ok(code: object, market: Market) -> bool:
    try:
        return parse_code(code).market is market
    except InvalidCodeError:
        return False


def check_row(row: ShortInterestRow, market: Market) -> None:
    """Raise InvalidRowError if this one row must not be stored."""
    code, trade_date, timestamp = row.code, row.trade_date, row.timestamp
    day = trade_date if type(trade_date) is date else None
    try:
        security = parse_code(code)
    except InvalidCodeError as exc:
        raise InvalidRowError(code, day, f"code: {exc.reason}") from None
    if type(code) is not str:  # a str subclass parses, but the column checks want exactly str
        raise InvalidRowError(code, day, f"code is a {type(code).__name__}, not a str")
    if security.market is not market:
        raise InvalidRowError(
            code, day, f"code is a {security.market.prefix} security in a {market.prefix} short-interest row"
        )
    if day is None:
        raise InvalidRowError(code, None, f"trade_date = {trade_date!r} is not a date")
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
    for name in sorted(COUNT_FIELDS[market]):
        value = getattr(row, name)
        if value is None:
            continue
        if type(value) is not int:
            raise InvalidRowError(code, day, f"{name} = {value!r} is not an integer count")
        if value < 0:
            raise InvalidRowError(code, day, f"{name} = {value} is negative")
        if value > BIGINT_MAX:
            raise InvalidRowError(code, day, f"{name} = {value} exceeds the BIGINT maximum {BIGINT_MAX}")
    for name in sorted(FLOAT_FIELDS[market]):
        value = getattr(row, name)
        if value is not None and (type(value) not in (float, int) or not _finite(value)):
            raise InvalidRowError(code, day, f"{name} = {value!r} is not a finite number")


def _all_finite(values: list[float]) -> bool:
    try:
        return all(map(math.isfinite, values))
    except OverflowError:  # an int too large for a double
        return False


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a double
        return False


def _check_unique(rows: Sequence[ShortInterestRow]) -> None:
    seen: set[tuple[str, date]] = set()
    for row in rows:
        key = (row.code, row.trade_date)
        if key in seen:
            raise InvalidRowError(row.code, row.trade_date, "appears twice in one batch (duplicate key)")
        seen.add(key)
