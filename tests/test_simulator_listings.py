"""The simulated gateway's listings: whole markets with names and histories, and one rate window per listing call."""

from __future__ import annotations

from datetime import date

from proto_client import OpenDClient, RequestError
from proto_client.security import Market
from proto_client.simulator.demo_data import rows_for
from proto_client.simulator.listings import ListingBook
from proto_client.simulator.market_codes import MAX_LISTED, listed_code, listed_index
from tests.support.gateway import start_gateway


def test_each_listing_call_has_its_own_window() -> None:
    gateway = start_gateway(["--listing-rate", "2/30"])
    try:
        with OpenDClient(gateway.host, gateway.port) as client:
            client.get_watchlist_groups()
            client.get_watchlist_groups()
            try:
                client.get_watchlist_groups()
            except RequestError as exc:
                assert exc.is_rate_limited, exc
            else:
                raise AssertionError("the third groups request in the window was accepted")
            assert client.get_watchlist("Tech")  # another call, another window
            assert client.get_static_info(1, 3, [(1, "00700")])[0].name == "TENCENT"
    finally:
        gateway.stop()


def test_every_listed_stock_and_etf_has_a_history() -> None:
    book = ListingBook(market_size=300)
    served = book.served_codes
    assert len(served) == 612
    delisted = [x for x in book.market(11, 3) if x.delisted]
    assert delisted and all(x.code in served for x in delisted)
    for code in ("HK.30000", "US.XAAA", listed_code(Market.US, 299), next(iter(served))):
        assert rows_for(code, date(2026, 4, 30))


def test_listed_codes_round_trip() -> None:
    for market in Market:
        for index in (0, 1, 9_000, MAX_LISTED - 1):
            assert listed_index(listed_code(market, index)) == index
    assert listed_index("HK.00700") is None and listed_index("US.SYN0001") is None and listed_index("US.XZZZZ") is None
