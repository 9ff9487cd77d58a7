"""A first load walks every page and stores exactly what the gateway serves, on Postgres and SQLite."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date

import pytest
import sqlalchemy as sa

from pipelines.config import RateLimit, Settings
from pipelines.crawl.crawler import open_crawler
from pipelines.crawl.events import CrawlEvent, EventKind
from pipelines.warehouse import create_engine_for, get_crawl_state, upgrade
from proto_client.security import Market
from tests.support.crawl import expected_rows, stored_rows
from tests.support.gateway import GatewayProcess

# Every test here waits seconds on loads, gateways, outages, services or Dagster runs: outside the inner loop.
pytestmark = pytest.mark.slow

# Both markets' 15 May reports are out by then: the SFC's on 22 May, FINRA's on 27 May.
AS_OF = date(2026, 5, 27)
NEWEST = date(2026, 5, 15)
# HK.00939 and US.AAPL carry counts above 2**31; both markets, a fund on each side.
CODES = ("HK.00939", "HK.02800", "US.AAPL", "US.SPY")


def test_full_load_matches_the_gateway_exactly(
    database_url: str, gateway_factory: Callable[..., GatewayProcess]
) -> None:
    gateway = gateway_factory("--rate", "off", "--as-of", AS_OF.isoformat())
    upgrade(database_url)
    settings = Settings(gateway.host, gateway.port, RateLimit(1000, 1.0), database_url)
    events: list[CrawlEvent] = []
    with open_crawler(settings, on_event=events.append) as crawler:
        results = crawler.crawl_codes(CODES)

    engine = create_engine_for(database_url)
    try:
        for code, result in zip(CODES, results, strict=True):
            expected = expected_rows(code, AS_OF)
            assert result.ok, result.error
            assert result.market is (Market.HK if code.startswith("HK.") else Market.US)
            assert result.full and result.resumed_from is None
            assert result.pages == result.requests == math.ceil(len(expected) / 50)
            assert (result.inserted, result.updated, result.unchanged) == (len(expected), 0, 0)
            assert result.newest_trade_date == expected[0][1] == NEWEST
            assert stored_rows(engine, code) == expected
            with engine.connect() as conn:
                state = get_crawl_state(conn, code)
            assert state is not None
            assert state.full_crawl_cursor is None and state.last_error is None
            assert state.newest_trade_date == NEWEST and state.last_success_at is not None
        biggest = max(row[3] for row in stored_rows(engine, "HK.00939"))
        assert biggest > 2**31
        assert max(row[3] for row in stored_rows(engine, "US.AAPL")) > 2**31
        # HK rows are stamped at Hong Kong midnight: through UTC they would land on the previous day.
        first = stored_rows(engine, "HK.00939")[0]
        assert first[1] == NEWEST and first[2] == 1778774400
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM rate_limit_reservations")).scalar_one() == sum(
                r.requests for r in results
            )
    finally:
        engine.dispose()

    pages = [e for e in events if e.kind is EventKind.PAGE and e.code == "US.AAPL"]
    assert [e.pages for e in pages] == list(range(1, len(pages) + 1))
    assert pages[-1].inserted == len(expected_rows("US.AAPL", AS_OF))
    assert [e.kind for e in events if e.code == "US.SPY" and e.kind is not EventKind.PAGE] == [
        EventKind.START,
        EventKind.DONE,
    ]
