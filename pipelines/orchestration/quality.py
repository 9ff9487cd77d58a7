"""Data-quality rules for the short-interest tables, as SQLAlchemy Core queries that run on Postgres and SQLite.

Each rule returns the offending rows as plain dataclasses; `checks.py` turns them into Dagster check
results. Thresholds follow each market's publication cadence: the SFC publishes HK positions weekly,
FINRA publishes US short interest twice a month.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from pipelines.warehouse.engine import read_connection
from pipelines.warehouse.schema import PERCENT_COLUMN, table_for
from proto_client.publication import Publication, publications
from proto_client.records import trade_date_of
from proto_client.security import Market


@dataclass(frozen=True, slots=True)
class MarketRules:
    """How often a market publishes, hence what counts as a gap or as stale."""

    max_gap_days: int  # consecutive trade dates further apart than this are a gap
    gap_window_days: int = 365  # gaps are looked for over this trailing window only


RULES: dict[Market, MarketRules] = {
    Market.HK: MarketRules(max_gap_days=10),
    Market.US: MarketRules(max_gap_days=20),
}
# A weekly refresh loads each publication within a week of it: a report published longer ago than
# this must be in the warehouse.
PUBLICATION_GRACE = timedelta(days=7)

# Counts (shares, days) that cannot be negative, per market.
NON_NEGATIVE_COLUMNS: dict[Market, tuple[str, ...]] = {
    Market.US: ("shares_short", "avg_daily_share_volume", "days_to_cover"),
    Market.HK: ("aggregated_short",),
}
PRICE_COLUMNS = ("close_price", "last_close_price")

# Enough offending rows to act on; the count is always exact.
MAX_LISTED = 50


def market_today(market: Market, now: datetime | None = None) -> date:
    """Today's date where the market is, which is what its publication schedule runs on."""
    return (now or datetime.now(market.tz)).astimezone(market.tz).date()


@dataclass(frozen=True, slots=True)
class Gap:
    code: str
    previous_date: date
    trade_date: date

    @property
    def days(self) -> int:
        return (self.trade_date - self.previous_date).days


def cadence_gaps(engine: sa.Engine, market: Market, *, today: date) -> list[Gap]:
    """Consecutive trade dates of one code, within the trailing window, further apart than the cadence allows."""
    rules = RULES[market]
    table = table_for(market)
    since = today - timedelta(days=rules.gap_window_days)
    previous = sa.func.lag(table.c.trade_date).over(partition_by=table.c.code, order_by=table.c.trade_date)
    inner = (
        sa.select(table.c.code, table.c.trade_date, previous.label("previous_date"))
        .where(table.c.trade_date >= since)
        .subquery()
    )
    query = (
        sa.select(inner.c.code, inner.c.previous_date, inner.c.trade_date)
        .where(inner.c.previous_date.is_not(None))
        .order_by(inner.c.code, inner.c.trade_date)
    )
    with read_connection(engine) as conn:
        rows = conn.execute(query).all()
    # SQLite returns the window value as text (LAG loses the column type), so normalize before subtracting.
    gaps = [Gap(code, _as_date(prev), _as_date(cur)) for code, prev, cur in rows]
    return [g for g in gaps if g.days > rules.max_gap_days]


@dataclass(frozen=True, slots=True)
class RangeViolation:
    code: str
    trade_date: date
    column: str
    value: float
    problem: str
    warn_only: bool  # plausible in reality (US short interest above 100 % of float), so a warning


def range_violations(engine: sa.Engine, market: Market) -> list[RangeViolation]:
    """Negative counts or prices, and percentages outside 0..100."""
    table = table_for(market)
    percent = PERCENT_COLUMN[market]
    negative_columns = (*NON_NEGATIVE_COLUMNS[market], *PRICE_COLUMNS)
    conditions = [table.c[name] < 0 for name in negative_columns]
    conditions += [table.c[percent] < 0, table.c[percent] > 100]
    columns = [table.c.code, table.c.trade_date, *(table.c[n] for n in (*negative_columns, percent))]
    query = sa.select(*columns).where(sa.or_(*conditions)).order_by(table.c.code, table.c.trade_date)
    found: list[RangeViolation] = []
    with read_connection(engine) as conn:
        for row in conn.execute(query).mappings():
            for name in negative_columns:
                value = row[name]
                if value is not None and value < 0:
                    found.append(RangeViolation(row["code"], row["trade_date"], name, value, "negative", False))
            value = row[percent]
            if value is not None and value < 0:
                found.append(RangeViolation(row["code"], row["trade_date"], percent, value, "below 0 %", False))
            elif value is not None and value > 100:
                found.append(
                    RangeViolation(row["code"], row["trade_date"], percent, value, "above 100 %", market is Market.US)
                )
    return found


@dataclass(frozen=True, slots=True)
class TimestampMismatch:
    code: str
    trade_date: date
    source_timestamp: int
    implied_date: date


def timestamp_mismatches(engine: sa.Engine, market: Market, *, batch: int = 5000) -> list[TimestampMismatch]:
    """Rows whose trade_date is not the market-local date of their source timestamp.

    Computed in Python over a streamed scan: SQLite has no time zones, and the rule must match
    `trade_date_of` (what the loader does) exactly, daylight saving included.
    """
    table = table_for(market)
    query = sa.select(table.c.code, table.c.trade_date, table.c.source_timestamp).order_by(
        table.c.code, table.c.trade_date
    )
    found: list[TimestampMismatch] = []
    with read_connection(engine) as conn:
        result = conn.execution_options(yield_per=batch).execute(query)
        for code, trade_date, timestamp in result:
            implied = trade_date_of(int(timestamp), market)
            if implied != trade_date:
                found.append(TimestampMismatch(code, trade_date, int(timestamp), implied))
    return found


@dataclass(frozen=True, slots=True)
class StaleCode:
    code: str
    newest_trade_date: date | None  # None: the code is expected but has no rows at all
    age_days: int | None


def expected_report(market: Market, today: date) -> Publication | None:
    """The newest report a weekly refresh must have loaded by `today`: published more than a week ago."""
    cutoff = today - PUBLICATION_GRACE
    found = publications(market, cutoff - timedelta(days=60), cutoff)
    return found[-1] if found else None


def stale_codes(
    engine: sa.Engine, market: Market, *, today: date, expected_codes: Iterable[str] | None = None
) -> tuple[list[StaleCode], date | None]:
    """Codes whose newest trade date is older than the newest report published more than a week ago.

    The publication days come from the exchange calendars (`proto_client.publication`), so
    holidays never make a code look stale. With `expected_codes` (the watchlist) only those codes are
    judged, the never loaded ones included: a code dropped from the watchlist keeps its rows but is no longer
    refreshed, and must not fail the check forever. Also returns the table's overall newest trade date, for
    the check's metadata.
    """
    expected = expected_report(market, today)
    table = table_for(market)
    query = sa.select(table.c.code, sa.func.max(table.c.trade_date)).group_by(table.c.code).order_by(table.c.code)
    with read_connection(engine) as conn:
        newest = {code: _as_date(day) for code, day in conn.execute(query)}
    judged = newest if expected_codes is None else {code: newest.get(code) for code in sorted(set(expected_codes))}
    stale = [
        StaleCode(code, day, None if day is None else (today - day).days)
        for code, day in judged.items()
        if day is None or (expected is not None and day < expected.report)
    ]
    overall = max(newest.values(), default=None)
    return stale, overall


def _as_date(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    raise TypeError(f"expected a date from the warehouse, got {value!r}")
