"""When each market's short-interest figures exist, and when their sources publish them.

Trading days come from `exchange_calendars` (XNYS, XHKG), which follows the exchanges' own holiday
announcements, lunar and one-off closures included; nothing here keeps a holiday list of its own.

* US (FINRA): positions settle on the 15th of each month and on the month's last day, each moved back
  to the last NYSE trading day on or before it; FINRA publishes them 7 NYSE trading days later,
  around 18:00 New York time.
* HK (SFC): aggregated reportable short positions as of each Friday, or the last HKEX trading day of
  that week before it; the SFC publishes them a week later, on the following Friday or the last
  trading day before it, after the close.

The simulated gateway serves a report only from its publication day on, the schedules launch US
refreshes only after a publication, the freshness check expects every report published more
than a week ago, and the warehouse stores each report's publication day (`published_on`).
"""

from __future__ import annotations

import bisect
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache

from proto_client.security import Market
from proto_client.session_cache import cache_file, read_sessions, write_sessions

US_PUBLICATION_LAG = 7  # NYSE trading days from settlement to FINRA's publication
HK_PUBLICATION_LAG = timedelta(days=7)  # the SFC publishes a week after the position date
FRIDAY = 4

# The span the calendars are built over: the oldest history any code has, to a decade ahead.
CALENDAR_START = date(1995, 1, 1)
CALENDAR_END = date(2045, 12, 31)

_EXCHANGE = {Market.US: "XNYS", Market.HK: "XHKG"}


class CalendarRangeError(ValueError):
    """A date outside the span the trading calendars are built for."""


@dataclass(frozen=True, slots=True)
class TradingDays:
    """One exchange's trading days, oldest first."""

    exchange: str
    sessions: tuple[date, ...]

    def is_open(self, day: date) -> bool:
        index = bisect.bisect_left(self.sessions, self._checked(day))
        return index < len(self.sessions) and self.sessions[index] == day

    def on_or_before(self, day: date) -> date:
        """The last trading day on or before `day`."""
        index = bisect.bisect_right(self.sessions, self._checked(day)) - 1
        if index < 0:
            raise CalendarRangeError(f"no {self.exchange} trading day on or before {day}")
        return self.sessions[index]

    def after(self, session: date, count: int) -> date:
        """The trading day `count` trading days after `day` (which must be a trading day)."""
        index = bisect.bisect_left(self.sessions, self._checked(session))
        if index >= len(self.sessions) or self.sessions[index] != session:
            raise ValueError(f"{session} is not an {self.exchange} trading day")
        if index + count >= len(self.sessions):
            raise CalendarRangeError(f"{self.exchange} calendar ends before {count} trading days after {session}")
        return self.sessions[index + count]

    def _checked(self, day: date) -> date:
        if not CALENDAR_START <= day <= CALENDAR_END:
            raise CalendarRangeError(
                f"{day} is outside the {self.exchange} calendar span {CALENDAR_START} to {CALENDAR_END}"
            )
        return day


@cache
def trading_days(market: Market) -> TradingDays:
    """The market's exchange calendar, once per process: from the session cache, else built and cached."""
    exchange = _EXCHANGE[market]
    path = cache_file(exchange, CALENDAR_START, CALENDAR_END)
    sessions = read_sessions(path)
    if sessions is None:
        sessions = _build_sessions(exchange)
        write_sessions(path, sessions)
    return TradingDays(exchange, sessions)


def _build_sessions(exchange: str) -> tuple[date, ...]:
    import exchange_calendars  # imported only here: it brings pandas and numpy with it

    with warnings.catch_warnings():
        # The library's own use of pandas APIs that pandas has deprecated: nothing a user can act on.
        warnings.simplefilter("ignore")
        calendar = exchange_calendars.get_calendar(
            exchange, start=CALENDAR_START.isoformat(), end=CALENDAR_END.isoformat()
        )
    return tuple(session.date() for session in calendar.sessions)


def report_dates(market: Market, start: date, end: date) -> Iterator[date]:
    """Every position date in [start, end], oldest first: FINRA settlement dates or SFC report dates."""
    return _us_settlement_dates(start, end) if market is Market.US else _hk_report_dates(start, end)


def publication_day(market: Market, report: date) -> date:
    """The day the source publishes the report of position date `report`."""
    if market is Market.US:
        return trading_days(Market.US).after(report, US_PUBLICATION_LAG)
    friday = report + timedelta(days=(FRIDAY - report.weekday()) % 7)
    return trading_days(Market.HK).on_or_before(friday + HK_PUBLICATION_LAG)


def published_on(market: Market, trade_date: date) -> date:
    """The publication day of a stored report of any trade date, as the warehouse records it.

    A position date that is not a trading day counts from the trading day before it, as the sources move a
    settlement date that falls on a closed day back to the last trading day; for a trading day this is
    `publication_day`.
    """
    if market is Market.US:
        return publication_day(market, trading_days(market).on_or_before(trade_date))
    return publication_day(market, trade_date)


def published_reports(market: Market, start: date, as_of: date) -> list[date]:
    """Position dates in [start, as_of] whose report is out by the day `as_of`, oldest first."""
    return [day for day in report_dates(market, start, as_of) if publication_day(market, day) <= as_of]


@dataclass(frozen=True, slots=True)
class Publication:
    report: date  # the position (settlement) date the figures are as of
    published: date  # the day the source publishes them


def publications(market: Market, start: date, end: date) -> list[Publication]:
    """Every publication day in [start, end], oldest first."""
    # A report is published within three weeks of its position date.
    reports = report_dates(market, start - timedelta(days=21), end)
    found = [Publication(day, publication_day(market, day)) for day in reports]
    return [p for p in found if start <= p.published <= end]


def next_publication(market: Market, after: date) -> Publication:
    """The first publication strictly after the day `after`."""
    found = publications(market, after + timedelta(days=1), after + timedelta(days=40))
    if not found:
        raise CalendarRangeError(f"no {market.prefix} publication within 40 days after {after}")
    return found[0]


def _us_settlement_dates(start: date, end: date) -> Iterator[date]:
    nyse = trading_days(Market.US)
    year, month = start.year, start.month
    while True:
        next_first = date(year + month // 12, month % 12 + 1, 1)
        for nominal in (date(year, month, 15), next_first - timedelta(days=1)):
            settlement = nyse.on_or_before(nominal)
            if settlement > end:
                return
            if settlement >= start:
                yield settlement
        year, month = next_first.year, next_first.month


def _hk_report_dates(start: date, end: date) -> Iterator[date]:
    hkex = trading_days(Market.HK)
    friday = start + timedelta(days=(FRIDAY - start.weekday()) % 7)
    while True:
        report = hkex.on_or_before(friday)
        if report > end:
            return
        # A week closed from Monday to Friday has no report of its own.
        if report >= start and report > friday - timedelta(days=FRIDAY + 1):
            yield report
        friday += timedelta(days=7)
