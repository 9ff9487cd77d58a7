"""OpenDClient against the simulated gateway process over TCP: what a crawl reads is exactly what is served."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from proto_client.client import OpenDClient
from proto_client.errors import RequestError
from proto_client.messages import PROTO_GET_SHORT_INTEREST, parse_short_interest_reply
from proto_client.pb import qot_get_short_interest_pb2
from proto_client.records import END_OF_DATA, HkShortInterestRow, Page, UsShortInterestRow
from proto_client.security import parse_code
from proto_client.simulator.demo_data import demo_codes, rows_for
from tests.support.gateway import GatewayProcess

# The SFC publishes the spec example's newest HK row, the 30 April positions, on 8 May.
AS_OF = date(2026, 5, 8)
GatewayFactory = Callable[..., GatewayProcess]


def _gateway(factory: GatewayFactory, *args: str) -> GatewayProcess:
    return factory("--rate", "off", "--as-of", AS_OF.isoformat(), *args)


def _crawl(client: OpenDClient, code: str, **kwargs: object) -> tuple[list[Page], list[object]]:
    pages = list(client.iter_short_interest(code, **kwargs))  # type: ignore[arg-type]
    return pages, [row for page in pages for row in page.rows]


def test_every_demo_code_pages_to_the_end_exactly_as_served(gateway_factory: GatewayFactory) -> None:
    gw = _gateway(gateway_factory)
    big_counts = 0
    with OpenDClient(gw.host, gw.port) as client:
        for code in demo_codes():
            pages, rows = _crawl(client, code)
            expected = rows_for(code, AS_OF)
            assert rows == expected, code
            assert pages[-1].next_key == END_OF_DATA
            assert all(len(page.rows) == 50 for page in pages[:-1]), code
            dates = [row.trade_date for row in rows]  # type: ignore[attr-defined]
            assert all(newer > older for newer, older in itertools.pairwise(dates)), code
            assert len(set(dates)) == len(dates)
            for row in rows:
                count = row.shares_short if isinstance(row, UsShortInterestRow) else row.aggregated_short  # type: ignore[union-attr]
                big_counts += count is not None and count > 2**31
        assert client.requests_sent == sum(-(-len(rows_for(code, AS_OF)) // 50) for code in demo_codes())
        assert client.connects == 1
    assert big_counts > 0  # uint64 counts (Apple's shares short) survive the wire


def test_hk_trade_date_is_the_hong_kong_day_from_the_spec_example(gateway_factory: GatewayFactory) -> None:
    gw = _gateway(gateway_factory)
    with OpenDClient(gw.host, gw.port) as client:
        page = client.get_short_interest_page("HK.00700", num=1)
    (row,) = page.rows
    assert isinstance(row, HkShortInterestRow)
    assert row.timestamp == 1777478400
    assert row.trade_date == date(2026, 4, 30)  # 2026-04-29 in UTC
    assert page.next_key == "1777478400"


def test_a_full_last_page_followed_by_an_empty_end_page(gateway_factory: GatewayFactory) -> None:
    gw = _gateway(gateway_factory, "--lazy-end")
    code = "HK.00700"
    expected = rows_for(code, AS_OF)
    num = next(n for n in range(50, 1, -1) if len(expected) % n == 0)  # 713 = 23 * 31
    with OpenDClient(gw.host, gw.port) as client:
        pages, rows = _crawl(client, code, num=num)
    assert rows == expected
    assert pages[-1].rows == ()
    assert pages[-1].next_key == END_OF_DATA
    assert len(pages) == len(expected) // num + 1


def test_resuming_from_a_key_reads_the_older_rest(gateway_factory: GatewayFactory) -> None:
    gw = _gateway(gateway_factory)
    expected = rows_for("US.AAPL", AS_OF)
    with OpenDClient(gw.host, gw.port) as client:
        first = client.get_short_interest_page("US.AAPL", num=50)
        _, rest = _crawl(client, parse_code("US.AAPL"), start_key=first.next_key)
        assert list(client.iter_short_interest("US.AAPL", start_key=END_OF_DATA)) == []
    assert list(first.rows) + rest == expected


@pytest.mark.parametrize("num", [1, 50])
def test_page_size_bounds_are_accepted(gateway_factory: GatewayFactory, num: int) -> None:
    gw = _gateway(gateway_factory)
    with OpenDClient(gw.host, gw.port) as client:
        page = client.get_short_interest_page("US.TSLA", num=num)
    assert list(page.rows) == rows_for("US.TSLA", AS_OF)[:num]


@pytest.mark.parametrize("num", [0, 51])
def test_page_size_out_of_bounds_is_refused_before_any_request(
    gateway_factory: GatewayFactory, tmp_path: Path, num: int
) -> None:
    stats = tmp_path / "stats.json"
    gw = _gateway(gateway_factory, "--stats-file", str(stats))
    throttled: list[None] = []
    with OpenDClient(gw.host, gw.port, throttle=lambda: throttled.append(None)) as client:
        with pytest.raises(ValueError, match=str(num)):
            client.get_short_interest_page("US.TSLA", num=num)
        with pytest.raises(ValueError, match=str(num)):
            next(client.iter_short_interest("US.TSLA", num=num))
        assert client.requests_sent == 0
        client.get_short_interest_page("US.TSLA", num=1)
    assert throttled == [None]
    assert json.loads(stats.read_text())["requests"] == 1


def test_unknown_code_is_a_request_error_about_the_security(gateway_factory: GatewayFactory) -> None:
    gw = _gateway(gateway_factory)
    with OpenDClient(gw.host, gw.port) as client:
        with pytest.raises(RequestError) as info:
            client.get_short_interest_page("US.ZZZZ")
        assert info.value.proto_id == PROTO_GET_SHORT_INTEREST
        assert info.value.is_unknown_security
        assert not info.value.is_transient
        # A refused request leaves the connection usable.
        assert client.get_short_interest_page("HK.02800", num=2).rows == tuple(rows_for("HK.02800", AS_OF)[:2])
        assert client.connects == 1


def test_unsupported_market_is_a_request_error_about_the_security(gateway_factory: GatewayFactory) -> None:
    """parse_code never lets SH through, so the raw request goes out on the client's own connection."""
    from proto_client.connection import Connection, Endpoint

    gw = _gateway(gateway_factory)
    request = qot_get_short_interest_pb2.Request()
    request.c2s.security.market = 21  # CNSH
    request.c2s.security.code = "600000"
    request.c2s.num = 50
    conn = Connection.open(Endpoint(gw.host, gw.port), client_id="t", connect_timeout=5, reply_timeout=5)
    try:
        reply = conn.request(PROTO_GET_SHORT_INTEREST, request.SerializeToString())
    finally:
        conn.close()
    with pytest.raises(RequestError) as info:
        parse_short_interest_reply(reply.body, parse_code("HK.00700"))
    assert info.value.is_unknown_security


def test_gateway_state(gateway_factory: GatewayFactory) -> None:
    gw = _gateway(gateway_factory)
    with OpenDClient(gw.host, gw.port) as client:
        state = client.get_global_state()
    assert state.qot_logined is True
    assert state.server_ver > 0
    assert state.time > 1_700_000_000


def test_threads_sharing_one_client_each_read_their_own_pages(gateway_factory: GatewayFactory) -> None:
    gw = _gateway(gateway_factory)
    codes = ["HK.00700", "HK.09988", "US.AAPL", "US.NVDA"]
    results: dict[str, list[object]] = {}
    errors: list[BaseException] = []

    with OpenDClient(gw.host, gw.port) as client:

        def crawl(code: str) -> None:
            try:
                results[code] = _crawl(client, code)[1]
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=crawl, args=(code,)) for code in codes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert errors == []
    for code in codes:
        assert results[code] == rows_for(code, AS_OF), code


def test_rows_are_typed_for_their_market(gateway_factory: GatewayFactory) -> None:
    gw = _gateway(gateway_factory)
    with OpenDClient(gw.host, gw.port) as client:
        us = client.get_short_interest_page("US.SPY", num=3)
        hk = client.get_short_interest_page(parse_code("HK.02800"), num=3)
    assert all(isinstance(row, UsShortInterestRow) and row.code == "US.SPY" for row in us.rows)
    assert all(isinstance(row, HkShortInterestRow) and row.code == "HK.02800" for row in hk.rows)
