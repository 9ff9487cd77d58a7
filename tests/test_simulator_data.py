"""The demo data the gateway serves: calendars, value ranges, determinism, and paging rules."""

from __future__ import annotations

import math
from collections import Counter
from datetime import date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from proto_client.publication import report_dates, trading_days
from proto_client.records import END_OF_DATA, HkShortInterestRow, UsShortInterestRow, trade_date_of
from proto_client.security import Market, parse_code
from proto_client.simulator.demo_data import demo_codes, rows_for
from proto_client.simulator.paging import PagingError, select_page

AS_OF = date(2026, 4, 30)
# The SFC publishes the API page's newest HK example row, the 30 April positions, on Friday 8 May.
HK_EXAMPLE_PUBLISHED = date(2026, 5, 8)
UINT31 = 2**31


def test_hk_report_dates_match_the_published_example() -> None:
    # The API page's HK.00700 example: Labour Day (Fri 1 May) and Good Friday move the row a day earlier.
    expected = ["2026-04-30", "2026-04-24", "2026-04-17", "2026-04-10", "2026-04-02", "2026-03-27"]
    rows = rows_for("HK.00700", HK_EXAMPLE_PUBLISHED)
    assert [r.trade_date.isoformat() for r in rows[:6]] == expected
    assert rows[0].timestamp == 1777478400


@pytest.mark.parametrize("code", [c for c in demo_codes() if c.startswith("HK.")])
def test_hk_rows_are_fridays_or_the_trading_day_before(code: str) -> None:
    hkex = trading_days(Market.HK)
    rows = rows_for(code, AS_OF)
    assert len(rows) > 300
    for row in rows:
        friday = row.trade_date + timedelta(days=(4 - row.trade_date.weekday()) % 7)
        assert hkex.is_open(row.trade_date)
        assert all(not hkex.is_open(friday - timedelta(days=k)) for k in range((friday - row.trade_date).days))
    gaps = {(a.trade_date - b.trade_date).days for a, b in pairwise(rows)}
    assert gaps <= set(range(4, 11))


@pytest.mark.parametrize("code", [c for c in demo_codes() if c.startswith("US.")])
def test_us_rows_are_finra_settlement_dates(code: str) -> None:
    nyse = trading_days(Market.US)
    rows = rows_for(code, AS_OF)
    assert rows[-1].trade_date == date(2012, 9, 14)
    for row in rows:
        day = row.trade_date
        assert nyse.is_open(day)
        nominal = date(day.year, day.month, 15) if day.day <= 15 else _month_end(day)
        assert all(not nyse.is_open(nominal - timedelta(days=k)) for k in range((nominal - day).days))
    # Mid-month and month-end, every month; by 30 April FINRA has published the 15 April figures (on
    # Friday 24 April) but not those of 30 April.
    assert rows[0].trade_date == date(2026, 4, 15)
    per_month = Counter((r.trade_date.year, r.trade_date.month) for r in rows[1:])
    assert set(per_month.values()) == {2}


def _month_end(day: date) -> date:
    next_first = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return next_first - timedelta(days=1)


def test_us_settlement_dates_move_back_over_weekends_and_holidays() -> None:
    dates = list(report_dates(Market.US, date(2026, 1, 1), date(2026, 6, 30)))
    assert dates == [
        date(2026, 1, 15),
        date(2026, 1, 30),  # Saturday 31st -> Friday
        date(2026, 2, 13),  # Sunday 15th -> Friday
        date(2026, 2, 27),
        date(2026, 3, 13),  # Sunday 15th -> Friday
        date(2026, 3, 31),
        date(2026, 4, 15),
        date(2026, 4, 30),
        date(2026, 5, 15),
        date(2026, 5, 29),  # Sunday 31st -> Friday
        date(2026, 6, 15),
        date(2026, 6, 30),
    ]
    assert list(report_dates(Market.HK, date(2026, 3, 30), date(2026, 4, 5))) == [date(2026, 4, 2)]


@pytest.mark.parametrize("code", demo_codes(extra=4))
def test_timestamps_are_local_midnight_and_newest_first(code: str) -> None:
    market = parse_code(code).market
    rows = rows_for(code, AS_OF)
    assert [r.timestamp for r in rows] == sorted((r.timestamp for r in rows), reverse=True)
    assert len({r.timestamp for r in rows}) == len(rows)
    for row in rows:
        assert row.code == code
        local = datetime.fromtimestamp(row.timestamp, ZoneInfo(market.tz_name))
        assert (local.hour, local.minute, local.second) == (0, 0, 0)
        assert trade_date_of(row.timestamp, market) == row.trade_date


def test_hk_timestamp_is_not_the_utc_date() -> None:
    row = rows_for("HK.00700", HK_EXAMPLE_PUBLISHED)[0]
    assert datetime.fromtimestamp(row.timestamp, ZoneInfo("UTC")).date() == date(2026, 4, 29)
    assert row.trade_date == date(2026, 4, 30)


@pytest.mark.parametrize("code", demo_codes(extra=2))
def test_values_are_in_realistic_ranges(code: str) -> None:
    rows = rows_for(code, AS_OF)
    for row in rows:
        assert row.close_price is not None and row.close_price > 0
        assert row.last_close_price is not None
        assert abs(row.last_close_price / row.close_price - 1) < 0.1
        assert round(row.close_price, 3) == row.close_price
        if isinstance(row, HkShortInterestRow):
            assert row.aggregated_short is not None and row.aggregated_short > 0
            assert row.aggregated_short_ratio is not None and 0 <= row.aggregated_short_ratio <= 100
            assert round(row.aggregated_short_ratio, 2) == row.aggregated_short_ratio
        else:
            assert isinstance(row, UsShortInterestRow)
            assert row.shares_short and row.avg_daily_share_volume
            assert row.short_percent is not None and 0 <= row.short_percent <= 100
            assert round(row.close_price, 2) == row.close_price
            assert row.days_to_cover == round(row.shares_short / row.avg_daily_share_volume, 2)


def test_some_counts_exceed_int32_in_both_markets() -> None:
    hk = rows_for("HK.00939", AS_OF)
    us = rows_for("US.AAPL", AS_OF)
    assert any(r.aggregated_short is not None and r.aggregated_short >= UINT31 for r in hk)
    assert any(r.shares_short is not None and r.shares_short >= UINT31 for r in us)
    assert all(r.aggregated_short is not None and r.aggregated_short < 2**64 for r in hk)


def test_listing_dates_bound_the_history() -> None:
    assert rows_for("HK.09988", AS_OF)[-1].trade_date >= date(2019, 11, 26)
    assert rows_for("HK.00700", AS_OF)[-1].trade_date == date(2012, 9, 7)


def test_moving_the_cutoff_never_changes_older_rows() -> None:
    for code in ("HK.00700", "US.AAPL", "US.SYN0001"):
        early = rows_for(code, date(2024, 1, 10))
        late = rows_for(code, AS_OF)
        assert late[-len(early) :] == early
        assert late[0].trade_date > early[0].trade_date
    assert rows_for("HK.00700", AS_OF) == rows_for("HK.00700", AS_OF)


def test_revision_changes_only_the_newest_two_rows_values() -> None:
    for code in ("HK.00700", "US.TSLA"):
        base = rows_for(code, AS_OF)
        revised = rows_for(code, AS_OF, revision=1)
        assert [r.timestamp for r in revised] == [r.timestamp for r in base]
        assert revised[2:] == base[2:]
        assert revised[0] != base[0] and revised[1] != base[1]
        assert rows_for(code, AS_OF, revision=2)[:2] != revised[:2]


def test_demo_codes_and_synthetic_codes() -> None:
    named = demo_codes()
    assert {"HK.00700", "HK.02800", "HK.00939", "US.AAPL", "US.SPY", "US.QQQ"} <= set(named)
    assert len(named) == len(set(named)) >= 10
    extra = demo_codes(extra=300)
    assert extra[: len(named)] == named
    assert len(set(extra)) == len(named) + 300
    assert {"US.SYN0001", "HK.89001", "US.SYN0150", "HK.89150"} <= set(extra)
    for code in extra:
        parse_code(code)
    with pytest.raises(ValueError, match="extra codes"):
        demo_codes(extra=-1)


def test_unknown_code_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        rows_for("HK.99999", AS_OF)
    with pytest.raises(KeyError):
        rows_for("US.SYN0000", AS_OF)


# --- paging (pure): the gateway's page selection --------------------------------------------------


def _crawl(code: str, num: int, *, lazy_end: bool) -> tuple[list[int], int]:
    rows = rows_for(code, AS_OF)
    seen: list[int] = []
    key: str | None = None
    requests = 0
    while True:
        page = select_page(rows, key, num, lazy_end=lazy_end)
        requests += 1
        seen.extend(r.timestamp for r in page.rows)
        if page.next_key == END_OF_DATA:
            return seen, requests
        assert page.next_key == str(page.rows[-1].timestamp)
        key = page.next_key


@pytest.mark.parametrize("lazy_end", [False, True])
@pytest.mark.parametrize("num", [1, 7, 50])
def test_paging_covers_every_row_once(num: int, lazy_end: bool) -> None:
    seen, requests = _crawl("US.MSFT", num, lazy_end=lazy_end)
    expected = [r.timestamp for r in rows_for("US.MSFT", AS_OF)]
    assert seen == expected
    exact = math.ceil(len(expected) / num)
    full_last_page = len(expected) % num == 0
    assert requests == exact + (1 if lazy_end and full_last_page else 0)


def test_exactly_full_last_page() -> None:
    rows = rows_for("US.MSFT", AS_OF)[:100]
    first = select_page(rows, None, 50)
    second = select_page(rows, first.next_key, 50)
    assert len(second.rows) == 50 and second.next_key == END_OF_DATA
    lazy = select_page(rows, first.next_key, 50, lazy_end=True)
    assert lazy.next_key == str(rows[-1].timestamp)
    tail = select_page(rows, lazy.next_key, 50, lazy_end=True)
    assert tail.rows == () and tail.next_key == END_OF_DATA


def test_paging_defaults_and_bounds() -> None:
    rows = rows_for("HK.00700", AS_OF)
    assert len(select_page(rows, None, None).rows) == 10
    assert len(select_page(rows, "", 50).rows) == 50
    for num in (0, 51, -3):
        with pytest.raises(PagingError, match=f"num {num}"):
            select_page(rows, None, num)
    for key in ("abc", "12.5", " 1777478400", "-2", "0x10"):
        with pytest.raises(PagingError, match="nextKey"):
            select_page(rows, key, 10)
    assert select_page(rows, "-1", 10).rows == ()
    assert select_page(rows, "0", 10) == select_page(rows, "0", 10)
    assert select_page(rows, "0", 10).rows == ()
    # A key between rows is a bound, not an index: the page starts strictly below it.
    page = select_page(rows, str(rows[3].timestamp + 1), 2)
    assert page.rows == tuple(rows[3:5])


def test_market_enum_matches_demo_codes() -> None:
    assert {parse_code(c).market for c in demo_codes()} == {Market.HK, Market.US}
