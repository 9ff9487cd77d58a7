"""Without --as-of the simulated gateway serves each market up to today *where that market is*."""

from __future__ import annotations

from datetime import UTC, date, datetime

from proto_client.security import Market
from proto_client.simulator.book import DemoBook

# 23:30 in New York on Monday 30 November 2026 is already Tuesday 1 December in Hong Kong.
NEW_YORK_EVENING = datetime(2026, 12, 1, 4, 30, tzinfo=UTC)
# 07:00 in Hong Kong on 1 December is still 30 November in New York.
HONG_KONG_MORNING = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)


def test_each_market_is_cut_off_at_its_own_date() -> None:
    book = DemoBook(None, clock=lambda: NEW_YORK_EVENING)
    assert book.as_of_for(Market.US) == date(2026, 11, 30)
    assert book.as_of_for(Market.HK) == date(2026, 12, 1)
    book = DemoBook(None, clock=lambda: HONG_KONG_MORNING)
    assert book.as_of_for(Market.US) == date(2026, 11, 30)
    assert book.as_of_for(Market.HK) == date(2026, 12, 1)


def test_a_fixed_as_of_applies_to_both_markets() -> None:
    book = DemoBook(date(2025, 6, 30), clock=lambda: NEW_YORK_EVENING)
    assert {book.as_of_for(m) for m in Market} == {date(2025, 6, 30)}
    assert book.rows("US.AAPL")[0].trade_date <= date(2025, 6, 30)
