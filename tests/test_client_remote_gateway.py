"""The client against gateway habits this project's own gateway did not have before: opaque page keys, pushes
under the serial number of the awaited reply, paging in a loop, and a quote login that is down."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from proto_client.client import OpenDClient
from proto_client.errors import PagingLoopError, QuoteLoginError, RequestError
from proto_client.pb import notify_pb2
from proto_client.simulator.demo_data import rows_for
from tests.support.gateway import GatewayProcess, RawOpenD
from tests.support.loader import requests_by_code

AS_OF = date(2026, 4, 30)


def test_opaque_keys_are_sent_back_verbatim(gateway_factory: Callable[..., GatewayProcess]) -> None:
    gw = gateway_factory("--rate", "off", "--as-of", AS_OF.isoformat(), "--opaque-keys")
    with OpenDClient(gw.host, gw.port) as client:
        pages = list(client.iter_short_interest("US.AAPL"))
        assert [row for page in pages for row in page.rows] == list(rows_for("US.AAPL", AS_OF))
        keys = [page.next_key for page in pages[:-1]]
        assert keys and not any(key.isdigit() for key in keys)
        resumed = list(client.iter_short_interest("US.AAPL", start_key=keys[1]))
        assert resumed[0].rows == pages[2].rows
        with pytest.raises(RequestError, match="invalid nextKey"):
            client.get_short_interest_page("US.AAPL", keys[1][:-4] + "AAA=")


def test_a_push_under_the_awaited_serial_number_is_not_taken_for_the_reply(
    gateway_factory: Callable[..., GatewayProcess],
) -> None:
    gw = gateway_factory("--rate", "off", "--as-of", AS_OF.isoformat(), "--notify-every", "1")
    with RawOpenD(gw.host, gw.port) as raw:
        raw.init_connect()
        serial = raw.send(3249, raw.short_interest_request(1, "00700").SerializeToString())
        push, reply = raw.receive(), raw.receive()
        assert (push.proto_id, push.serial_no) == (1003, serial)
        assert notify_pb2.Response.FromString(push.body).s2c.connectStatus.qotLogined
        assert (reply.proto_id, reply.serial_no) == (3249, serial)
    with OpenDClient(gw.host, gw.port) as client:
        assert [r for p in client.iter_short_interest("HK.00700") for r in p.rows] == list(rows_for("HK.00700", AS_OF))
        assert client.get_global_state().qot_logined


def test_a_gateway_paging_in_a_loop_is_refused_within_three_requests(
    gateway_factory: Callable[..., GatewayProcess], tmp_path: Path
) -> None:
    stats = tmp_path / "stats.json"
    gw = gateway_factory("--rate", "off", "--opaque-keys", "--loop-code", "HK.00700", "--stats-file", str(stats))
    with OpenDClient(gw.host, gw.port) as client, pytest.raises(PagingLoopError, match=r"HK\.00700.*loop"):
        list(client.iter_short_interest("HK.00700"))
    assert requests_by_code(stats)["HK.00700"] <= 3


def test_a_gateway_not_logged_in_refuses_quote_requests_as_a_login_error(
    gateway_factory: Callable[..., GatewayProcess], tmp_path: Path
) -> None:
    stats = tmp_path / "stats.json"
    gw = gateway_factory("--rate", "off", "--not-logged-in", "--stats-file", str(stats))
    with OpenDClient(gw.host, gw.port) as client:
        assert not client.get_global_state().qot_logined
        with pytest.raises(QuoteLoginError, match="not logged in to the quote server"):
            client.get_short_interest_page("HK.00700")
    checking = OpenDClient(gw.host, gw.port, check_quote_login=True)
    with pytest.raises(QuoteLoginError, match="qotLogined=false"):
        checking.connect()
    checking.close()
    assert requests_by_code(stats) == {}  # the refused request above was the only one: counted, never served
