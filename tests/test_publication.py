"""Trading calendars and the sources' publication days, and the simulated gateway publishing on them."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from proto_client.publication import (
    CalendarRangeError,
    next_publication,
    publication_day,
    publications,
    report_dates,
    trading_days,
)
from proto_client.security import Market
from proto_client.simulator.demo_data import rows_for


def test_hkex_closures_include_the_lunar_holidays() -> None:
    hkex = trading_days(Market.HK)
    closed = {
        date(2025, 4, 4): "Ching Ming",
        date(2025, 5, 5): "Buddha's Birthday",
        date(2025, 10, 7): "the day after Mid-Autumn",
        date(2025, 10, 29): "Chung Yeung",
        date(2026, 6, 19): "Tuen Ng",
        date(2026, 2, 17): "Lunar New Year",
    }
    assert [name for day, name in closed.items() if hkex.is_open(day)] == []
    assert hkex.is_open(date(2026, 6, 18))


def test_nyse_closures_follow_the_exchange() -> None:
    nyse = trading_days(Market.US)
    assert not nyse.is_open(date(2025, 1, 9))  # national day of mourning
    assert not nyse.is_open(date(2026, 7, 3))  # Independence Day on a Saturday: Friday closes
    assert nyse.is_open(date(2021, 12, 31))  # NYSE stays open for a Saturday New Year
    assert nyse.on_or_before(date(2026, 11, 26)) == date(2026, 11, 25)  # Thanksgiving


def test_finra_publishes_seven_trading_days_after_settlement() -> None:
    # Martin Luther King Jr. Day (19 January) pushes the 15 January figures to Tuesday 27 January.
    assert publication_day(Market.US, date(2026, 1, 15)) == date(2026, 1, 27)
    assert publication_day(Market.US, date(2026, 3, 31)) == date(2026, 4, 10)  # Good Friday 3 April
    found = publications(Market.US, date(2026, 1, 1), date(2026, 12, 31))
    assert len(found) == 24
    assert [p.report for p in found] == list(report_dates(Market.US, date(2025, 12, 31), date(2026, 12, 15)))


def test_sfc_publishes_a_week_after_the_position_date() -> None:
    assert publication_day(Market.HK, date(2026, 5, 8)) == date(2026, 5, 15)
    # Labour Day (Friday 1 May) moves both the position date and the publication a day earlier.
    assert publication_day(Market.HK, date(2026, 4, 24)) == date(2026, 4, 30)
    assert publication_day(Market.HK, date(2026, 4, 30)) == date(2026, 5, 8)


def test_next_publication_is_strictly_after_the_day() -> None:
    assert next_publication(Market.US, date(2026, 1, 26)).published == date(2026, 1, 27)
    upcoming = next_publication(Market.US, date(2026, 1, 27))
    assert (upcoming.report, upcoming.published) == (date(2026, 1, 30), date(2026, 2, 10))


def test_dates_outside_the_calendar_span_are_refused_by_name() -> None:
    with pytest.raises(CalendarRangeError, match="1990-01-02"):
        trading_days(Market.US).is_open(date(1990, 1, 2))


@pytest.mark.parametrize(
    ("code", "report"),
    [("US.AAPL", date(2026, 1, 15)), ("US.TSLA", date(2026, 3, 31)), ("HK.00700", date(2026, 4, 24))],
)
def test_the_simulated_gateway_serves_a_report_from_its_publication_day_on(code: str, report: date) -> None:
    market = Market.US if code.startswith("US.") else Market.HK
    published = publication_day(market, report)
    assert report not in {r.trade_date for r in rows_for(code, published - timedelta(days=1))}
    assert rows_for(code, published)[0].trade_date == report
