"""Exchange calendars: which dates carry a short-interest row in each market.

HK rows follow the SFC's weekly aggregated reportable short positions (as of each Friday, or the
trading day before when the Friday is a holiday); US rows follow FINRA's twice-monthly settlement
dates. The holiday rules cover the closures that move those dates; they are a faithful subset of the
exchanges' calendars, not a replacement for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, timedelta
from functools import lru_cache

# The earliest date either market's history reaches back to.
HISTORY_START = date(2012, 9, 1)

# First day of the Lunar New Year; HK closes for three days (plus one when one of them is a Sunday).
_LUNAR_NEW_YEAR = {
    2012: date(2012, 1, 23),
    2013: date(2013, 2, 10),
    2014: date(2014, 1, 31),
    2015: date(2015, 2, 19),
    2016: date(2016, 2, 8),
    2017: date(2017, 1, 28),
    2018: date(2018, 2, 16),
    2019: date(2019, 2, 5),
    2020: date(2020, 1, 25),
    2021: date(2021, 2, 12),
    2022: date(2022, 2, 1),
    2023: date(2023, 1, 22),
    2024: date(2024, 2, 10),
    2025: date(2025, 1, 29),
    2026: date(2026, 2, 17),
    2027: date(2027, 2, 6),
    2028: date(2028, 1, 26),
    2029: date(2029, 2, 13),
    2030: date(2030, 2, 3),
    2031: date(2031, 1, 23),
    2032: date(2032, 2, 11),
}

# One-off NYSE closures (Hurricane Sandy, national days of mourning).
_US_SPECIAL_CLOSURES = frozenset({date(2012, 10, 29), date(2012, 10, 30), date(2018, 12, 5), date(2025, 1, 9)})

SATURDAY, SUNDAY = 5, 6
FRIDAY = 4


def easter_sunday(year: int) -> date:
    """Gregorian Easter (anonymous Gregorian algorithm); Good Friday moves both markets' dates."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    leap = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * leap) // 451
    month, day = divmod(h + leap - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    next_month = date(year + month // 12, month % 12 + 1, 1)
    last = next_month - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


@lru_cache(maxsize=64)
def hk_holidays(year: int) -> frozenset[date]:
    """HKEX full-day closures that fall on weekdays (a Sunday holiday moves to the next free weekday)."""
    easter = easter_sunday(year)
    fixed = [
        date(year, 1, 1),
        easter - timedelta(days=2),  # Good Friday
        easter - timedelta(days=1),  # Holy Saturday
        easter + timedelta(days=1),  # Easter Monday
        date(year, 5, 1),
        date(year, 7, 1),
        date(year, 10, 1),
        date(year, 12, 25),
        date(year, 12, 26),
    ]
    lny = _LUNAR_NEW_YEAR.get(year)
    if lny is not None:
        days = [lny + timedelta(days=n) for n in range(3)]
        fixed.extend(days)
        if any(d.weekday() == SUNDAY for d in days):
            fixed.append(lny + timedelta(days=3))
    holidays: set[date] = set()
    for day in sorted(set(fixed)):
        if day.weekday() == SUNDAY:
            day += timedelta(days=1)
            while day in holidays or day in fixed or day.weekday() >= SATURDAY:
                day += timedelta(days=1)
        if day.weekday() < SATURDAY:
            holidays.add(day)
    return frozenset(holidays)


def _observed_us(day: date, *, saturday_to_friday: bool = True) -> date | None:
    if day.weekday() == SATURDAY:
        return day - timedelta(days=1) if saturday_to_friday else None
    if day.weekday() == SUNDAY:
        return day + timedelta(days=1)
    return day


@lru_cache(maxsize=64)
def us_holidays(year: int) -> frozenset[date]:
    """NYSE full-day closures, observed on weekdays as the exchange observes them."""
    observed = [
        # NYSE does not close on Friday 31 December for a Saturday New Year's Day.
        _observed_us(date(year, 1, 1), saturday_to_friday=False),
        _nth_weekday(year, 1, 0, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday
        easter_sunday(year) - timedelta(days=2),  # Good Friday
        _last_weekday(year, 5, 0),  # Memorial Day
        _observed_us(date(year, 6, 19)) if year >= 2022 else None,  # Juneteenth
        _observed_us(date(year, 7, 4)),
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving
        _observed_us(date(year, 12, 25)),
    ]
    specials = {d for d in _US_SPECIAL_CLOSURES if d.year == year}
    return frozenset({d for d in observed if d is not None} | specials)


def is_hk_trading_day(day: date) -> bool:
    return day.weekday() < SATURDAY and day not in hk_holidays(day.year)


def is_us_business_day(day: date) -> bool:
    return day.weekday() < SATURDAY and day not in us_holidays(day.year)


def _on_or_before(day: date, is_open: Callable[[date], bool]) -> date:
    while not is_open(day):
        day -= timedelta(days=1)
    return day


def hk_report_dates(start: date, end: date) -> Iterator[date]:
    """Every weekly SFC report date in [start, end], oldest first: Fridays, or the trading day before."""
    friday = start + timedelta(days=(FRIDAY - start.weekday()) % 7)
    while True:
        report = _on_or_before(friday, is_hk_trading_day)
        if report > end:
            return
        if report >= start:
            yield report
        friday += timedelta(days=7)


def us_settlement_dates(start: date, end: date) -> Iterator[date]:
    """Every FINRA settlement date in [start, end], oldest first: the 15th and month-end, moved earlier."""
    year, month = start.year, start.month
    while True:
        next_first = date(year + month // 12, month % 12 + 1, 1)
        for nominal in (date(year, month, 15), next_first - timedelta(days=1)):
            settlement = _on_or_before(nominal, is_us_business_day)
            if settlement > end:
                return
            if settlement >= start:
                yield settlement
        year, month = next_first.year, next_first.month
