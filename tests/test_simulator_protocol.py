"""The simulated gateway as a real process over real TCP: handshake, paging, errors, concurrency."""

from __future__ import annotations

import json
import math
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest

from proto_client.errors import GatewayConnectionError, ProtocolError, RequestError
from proto_client.framing import PROTO_FMT_JSON, read_frame
from proto_client.pb import get_global_state_pb2, keep_alive_pb2, qot_get_short_interest_pb2
from proto_client.records import END_OF_DATA, HkShortInterestRow, ShortInterestRow
from proto_client.simulator.demo_data import rows_for
from tests.support.gateway import GatewayProcess, RawOpenD, start_gateway

AS_OF = date(2026, 4, 30)


@pytest.fixture(scope="module")
def gw() -> Iterator[GatewayProcess]:
    """One gateway for the read-only protocol checks in this module (rate off, fixed data cutoff)."""
    process = start_gateway(["--rate", "off", "--as-of", AS_OF.isoformat()])
    yield process
    process.stop()


@pytest.fixture
def conn(gw: GatewayProcess) -> Iterator[RawOpenD]:
    with RawOpenD(gw.host, gw.port) as peer:
        assert peer.init_connect().retType == 0
        yield peer


def _wire_rows(response: qot_get_short_interest_pb2.Response) -> list[tuple[object, ...]]:
    s2c = response.s2c
    hk = [
        (i.timestamp, i.timestampStr, i.aggregatedShort, i.aggregatedShortRatio, i.closePrice, i.lastClosePrice)
        for i in s2c.hkItemList
    ]
    us = [
        (
            i.timestamp,
            i.timestampStr,
            i.sharesShort,
            i.shortPercent,
            i.avgDailyShareVolume,
            i.daysToCover,
            i.closePrice,
            i.lastClosePrice,
        )
        for i in s2c.usItemList
    ]
    assert not (hk and us)
    return hk or us


def _expected(row: ShortInterestRow) -> tuple[object, ...]:
    day = row.trade_date.isoformat()
    if isinstance(row, HkShortInterestRow):
        return (
            row.timestamp,
            day,
            row.aggregated_short,
            row.aggregated_short_ratio,
            row.close_price,
            row.last_close_price,
        )
    return (
        row.timestamp,
        day,
        row.shares_short,
        row.short_percent,
        row.avg_daily_share_volume,
        row.days_to_cover,
        row.close_price,
        row.last_close_price,
    )


def _crawl(peer: RawOpenD, code: str, num: int = 50) -> tuple[list[tuple[object, ...]], int]:
    rows: list[tuple[object, ...]] = []
    key: str | None = None
    requests = 0
    while True:
        response = peer.short_interest(code, key, num)
        requests += 1
        assert response.retType == 0, response.retMsg
        page = _wire_rows(response)
        rows.extend(page)
        if response.s2c.nextKey == END_OF_DATA:
            return rows, requests
        assert response.s2c.nextKey == str(page[-1][0])
        key = response.s2c.nextKey


def _error(response: qot_get_short_interest_pb2.Response) -> RequestError:
    return RequestError(3249, response.retType, response.retMsg, response.errCode)


def test_init_connect_reply(gw: GatewayProcess) -> None:
    with RawOpenD(gw.host, gw.port) as first, RawOpenD(gw.host, gw.port) as second:
        a, b = first.init_connect("client-a"), second.init_connect("client-b")
    for reply in (a, b):
        assert reply.retType == 0
        assert reply.s2c.serverVer > 0
        assert reply.s2c.loginUserID > 0
        assert reply.s2c.keepAliveInterval == 10
        assert len(reply.s2c.connAESKey) == 16
    assert a.s2c.connID != b.s2c.connID


def test_keep_alive_and_global_state(conn: RawOpenD) -> None:
    now = int(time.time())
    alive = conn.call(1004, keep_alive_pb2.Request(c2s=keep_alive_pb2.C2S(time=now)), keep_alive_pb2.Response)
    assert alive.retType == 0 and abs(alive.s2c.time - now) < 3600
    state = conn.call(
        1002, get_global_state_pb2.Request(c2s=get_global_state_pb2.C2S(userID=0)), get_global_state_pb2.Response
    )
    assert state.retType == 0
    assert state.s2c.qotLogined is True
    assert state.s2c.serverVer > 0


def test_requests_before_init_connect_are_refused(gw: GatewayProcess) -> None:
    with RawOpenD(gw.host, gw.port) as peer:
        response = peer.short_interest("HK.00700")
        assert response.retType == -1 and "InitConnect" in response.retMsg
        assert peer.init_connect().retType == 0
        assert peer.short_interest("HK.00700").retType == 0


def test_unknown_proto_id_is_answered_and_the_connection_survives(conn: RawOpenD) -> None:
    serial = conn.send(9999, b"")
    frame = conn.receive()
    assert (frame.proto_id, frame.serial_no) == (9999, serial)
    response = keep_alive_pb2.Response()
    response.ParseFromString(frame.body)
    assert response.retType == -1
    assert "unknown proto id 9999" in response.retMsg
    assert conn.short_interest("US.AAPL").retType == 0


def test_unparseable_body_is_an_invalid_packet_reply(conn: RawOpenD) -> None:
    conn.send(3249, b"\xff\xff\xff garbage")
    response = qot_get_short_interest_pb2.Response()
    response.ParseFromString(conn.receive().body)
    assert response.retType == -500
    assert "3249" in response.retMsg
    assert conn.short_interest("US.AAPL").retType == 0


@pytest.mark.parametrize("code", ["HK.00700", "US.AAPL"])
def test_paging_to_the_end_returns_every_row_once(conn: RawOpenD, code: str) -> None:
    expected = rows_for(code, AS_OF)
    served, requests = _crawl(conn, code)
    assert served == [_expected(r) for r in expected]
    assert len({row[0] for row in served}) == len(served)
    assert requests == math.ceil(len(expected) / 50)


def test_page_size_defaults_to_ten_and_is_bounded(conn: RawOpenD) -> None:
    assert len(conn.short_interest("HK.00005", num=None).s2c.hkItemList) == 10
    assert len(conn.short_interest("HK.00005", num=1).s2c.hkItemList) == 1
    assert len(conn.short_interest("HK.00005", num=50).s2c.hkItemList) == 50
    for bad in (0, 51, -1):
        response = conn.short_interest("HK.00005", num=bad)
        assert response.retType == -1
        assert f"num {bad}" in response.retMsg and "1 and 50" in response.retMsg


def test_second_page_is_strictly_older(conn: RawOpenD) -> None:
    first = conn.short_interest("US.TSLA", num=5)
    second = conn.short_interest("US.TSLA", first.s2c.nextKey, num=5)
    assert first.s2c.nextKey == str(first.s2c.usItemList[-1].timestamp)
    assert second.s2c.usItemList[0].timestamp < first.s2c.usItemList[-1].timestamp
    assert [_expected(r) for r in rows_for("US.TSLA", AS_OF)[5:10]] == _wire_rows(second)


def test_malformed_next_key_is_refused(conn: RawOpenD) -> None:
    response = conn.short_interest("US.TSLA", "not-a-key")
    assert response.retType == -1 and "nextKey" in response.retMsg


def test_unknown_security_message_matches_the_client_classifier(conn: RawOpenD) -> None:
    response = conn.short_interest("HK.99999")
    assert response.retType == -1
    assert response.retMsg == "unknown security HK.99999"
    error = _error(response)
    assert error.is_unknown_security and not error.is_rate_limited


@pytest.mark.parametrize(("market", "name"), [(21, "CNSH"), (22, "CNSZ"), (31, "SG"), (2, "HK_Future"), (77, "77")])
def test_unsupported_markets_are_refused_by_name(conn: RawOpenD, market: int, name: str) -> None:
    request = conn.short_interest_request(market, "600000")
    response = conn.call(3249, request, qot_get_short_interest_pb2.Response)
    assert response.retType == -1
    assert f"market {name}" in response.retMsg
    assert _error(response).is_unknown_security


def test_json_body_format_is_answered_in_json(conn: RawOpenD) -> None:
    body = json.dumps({"c2s": {"security": {"market": 11, "code": "MSFT"}, "num": 3}}).encode()
    serial = conn.send(3249, body, proto_fmt=PROTO_FMT_JSON)
    frame = conn.receive()
    assert (frame.serial_no, frame.proto_fmt) == (serial, PROTO_FMT_JSON)
    reply = json.loads(frame.body)
    assert reply["retType"] == 0
    newest = [r.timestamp for r in rows_for("US.MSFT", AS_OF)[:3]]
    assert [int(i["timestamp"]) for i in reply["s2c"]["usItemList"]] == newest
    assert reply["s2c"]["nextKey"] == str(newest[-1])


def test_many_connections_are_served_concurrently(gw: GatewayProcess) -> None:
    codes = ["HK.00700", "HK.09988", "HK.00939", "HK.02800", "US.AAPL", "US.SPY", "US.NVDA", "US.QQQ"] * 2

    def crawl(code: str) -> bool:
        with RawOpenD(gw.host, gw.port) as peer:
            peer.init_connect(f"client-{code}")
            served, _ = _crawl(peer, code)
        return served == [_expected(r) for r in rows_for(code, AS_OF)]

    with ThreadPoolExecutor(max_workers=len(codes)) as pool:
        assert all(pool.map(crawl, codes))


def test_a_malformed_client_frame_closes_only_that_connection(gw: GatewayProcess, conn: RawOpenD) -> None:
    with socket.create_connection((gw.host, gw.port), timeout=10) as rogue:
        rogue.sendall(b"GET / HTTP/1.1\r\nHost: gateway\r\n\r\n" + b"\0" * 44)
        with pytest.raises((GatewayConnectionError, ProtocolError, ConnectionResetError)):
            read_frame(rogue)
    assert conn.short_interest("US.AAPL").retType == 0
