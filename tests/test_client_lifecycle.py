"""OpenDClient's connection lifecycle: keepalive while idle, throttling only 3249, and clean shutdown."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from proto_client.client import OpenDClient
from proto_client.connection import Connection, Endpoint
from proto_client.errors import GatewayConnectionError, PagingLoopError, ProtocolError
from proto_client.framing import Frame, encode_frame
from proto_client.messages import (
    PROTO_GET_SHORT_INTEREST,
    PROTO_KEEP_ALIVE,
    keep_alive_request,
    parse_short_interest_reply,
    short_interest_request,
)
from proto_client.page_walk import PageWalk
from proto_client.records import END_OF_DATA, HkShortInterestRow, Page
from proto_client.security import parse_code
from proto_client.simulator.demo_data import rows_for
from tests.support.gateway import GatewayProcess

AS_OF = date(2026, 5, 1)
GatewayFactory = Callable[..., GatewayProcess]


def _gateway(factory: GatewayFactory, *args: str) -> GatewayProcess:
    return factory("--rate", "off", "--as-of", AS_OF.isoformat(), *args)


def _keepalive_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("opend-keepalive")]


def _wait_until(condition: Callable[[], bool], limit: float = 20.0) -> bool:
    """Poll for an event that takes real time; the limit only bounds a broken run."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.mark.slow
def test_keepalive_holds_an_idle_connection_open(gateway_factory: GatewayFactory) -> None:
    # The gateway closes connections silent for 2 s; the client must speak every 0.8 s while idle.
    gw = _gateway(gateway_factory, "--keepalive-interval", "1", "--idle-timeout", "2")
    with OpenDClient(gw.host, gw.port) as client:
        assert _wait_until(lambda: client.keepalives_sent >= 4)
        page = client.get_short_interest_page("HK.03690", num=3)
        assert client.connects == 1  # never dropped for idling, so no reconnect was needed
    assert list(page.rows) == rows_for("HK.03690", AS_OF)[:3]


def test_throttle_is_called_only_for_short_interest_requests(gateway_factory: GatewayFactory) -> None:
    gw = _gateway(gateway_factory, "--keepalive-interval", "1")
    calls: list[int] = []
    with OpenDClient(gw.host, gw.port, throttle=lambda: calls.append(1)) as client:
        client.get_global_state()
        assert _wait_until(lambda: client.keepalives_sent >= 1)
        assert calls == []
        pages = list(client.iter_short_interest("US.QQQ"))
        assert len(calls) == len(pages) == client.requests_sent


def test_close_stops_the_keepalive_thread_and_is_idempotent(gateway_factory: GatewayFactory) -> None:
    gw = _gateway(gateway_factory, "--keepalive-interval", "1")
    before = set(_keepalive_threads())
    client = OpenDClient(gw.host, gw.port)
    client.connect()
    started = [t for t in _keepalive_threads() if t not in before]
    assert len(started) == 1 and started[0].daemon
    client.close()
    assert not started[0].is_alive()
    client.close()
    assert set(_keepalive_threads()) == before


@pytest.mark.slow
def test_a_closed_client_refuses_requests_until_reopened(gateway_factory: GatewayFactory) -> None:
    gw = _gateway(gateway_factory)
    client = OpenDClient(gw.host, gw.port)
    with client:
        client.get_short_interest_page("US.SPY", num=1)
    with pytest.raises(GatewayConnectionError, match="closed"):
        client.get_short_interest_page("US.SPY", num=1)
    client.connect()
    try:
        assert client.get_short_interest_page("US.SPY", num=1).rows == tuple(rows_for("US.SPY", AS_OF)[:1])
    finally:
        client.close()
    assert _keepalive_threads() == []


def test_first_request_connects_on_demand(gateway_factory: GatewayFactory) -> None:
    gw = _gateway(gateway_factory)
    client = OpenDClient(gw.host, gw.port)
    try:
        assert client.get_global_state().qot_logined
        assert client.connects == 1
    finally:
        client.close()
    assert _keepalive_threads() == []


def test_close_from_another_thread_ends_a_stalled_request_promptly(gateway_factory: GatewayFactory) -> None:
    gw = _gateway(gateway_factory, "--delay", "60")
    client = OpenDClient(gw.host, gw.port, reply_timeout=120)
    client.connect()
    outcome: list[BaseException] = []

    def request() -> None:
        try:
            client.get_short_interest_page("US.AAPL")
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=request)
    worker.start()
    assert _wait_until(lambda: client.requests_sent == 1)
    client.close()
    worker.join(30)
    assert not worker.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], GatewayConnectionError | ProtocolError)
    assert _keepalive_threads() == []


def _page(next_key: str, rows: int = 1, timestamp: int = 1777478400) -> Page:
    row = HkShortInterestRow("HK.00700", AS_OF, timestamp, 1, 0.1, 1.0, 1.0)
    return Page("HK.00700", (row,) * rows, next_key)


def test_paging_stops_at_the_end_marker_or_an_empty_page() -> None:
    assert PageWalk("HK.00700").next_key(_page(END_OF_DATA)) is None
    assert PageWalk("HK.00700").next_key(_page("1776873600", rows=0)) is None
    assert PageWalk("HK.00700", "1777478400").next_key(_page("1776873600")) == "1776873600"


def test_page_keys_are_opaque_and_passed_on_verbatim() -> None:
    walk = PageWalk("HK.00700")
    assert walk.next_key(_page("SEsuMDA3MDB8 +/=\u00e9", timestamp=1777478400)) == "SEsuMDA3MDB8 +/=\u00e9"
    assert walk.next_key(_page("another token", timestamp=1776873600)) == "another token"


@pytest.mark.parametrize("start_key", [None, "K1"])
def test_a_key_already_used_in_the_walk_is_refused(start_key: str | None) -> None:
    walk = PageWalk("HK.00700", start_key)
    if start_key is None:
        walk.next_key(_page("K1", timestamp=1777478400))
    with pytest.raises(PagingLoopError, match=r"HK\.00700.*'K1'.*loop"):
        walk.next_key(_page("K1", timestamp=1776873600))


@pytest.mark.parametrize("second", [1777478400, 1777500000])
def test_a_page_not_older_than_the_one_before_is_refused(second: int) -> None:
    walk = PageWalk("HK.00700")
    walk.next_key(_page("K1", timestamp=1777478400))
    with pytest.raises(PagingLoopError, match="not older"):
        walk.next_key(_page("K2", timestamp=second))


def test_an_idle_connection_the_gateway_closed_is_replaced_before_throttling(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    stats_file = tmp_path / "stats.json"
    gw = _gateway(gateway_factory, "--idle-timeout", "1", "--keepalive-interval", "30", "--stats-file", str(stats_file))
    throttled: list[None] = []
    with OpenDClient(gw.host, gw.port, throttle=lambda: throttled.append(None)) as client:
        first = client.get_short_interest_page("US.NVDA", num=2)
        assert _wait_until(lambda: not client.is_connected())
        second = client.get_short_interest_page("US.NVDA", first.next_key, num=2)
        assert client.connects == 2
        assert client.requests_sent == len(throttled) == 2
    assert json.loads(stats_file.read_text())["requests"] == 2
    assert list(first.rows + second.rows) == rows_for("US.NVDA", AS_OF)[:4]


def test_replies_to_other_requests_arriving_first_are_skipped(gateway_factory: GatewayFactory) -> None:
    gw = _gateway(gateway_factory)
    conn = Connection.open(Endpoint(gw.host, gw.port), client_id="stray", connect_timeout=5, reply_timeout=10)
    try:
        # A KeepAlive whose reply nobody awaits: it reaches the reader first, with a foreign serial number.
        conn._sock.sendall(encode_frame(Frame(PROTO_KEEP_ALIVE, 4_000_000_000, keep_alive_request(0))))
        security = parse_code("HK.09988")
        reply = conn.request(PROTO_GET_SHORT_INTEREST, short_interest_request(security, None, 3))
    finally:
        conn.close()
    assert list(parse_short_interest_reply(reply.body, security).rows) == rows_for("HK.09988", AS_OF)[:3]
