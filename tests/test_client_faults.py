"""OpenDClient when the gateway misbehaves: drops, stalls, corrupt frames, or is not there at all."""

from __future__ import annotations

import json
import socket
import tracemalloc
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from proto_client.client import OpenDClient
from proto_client.errors import GatewayConnectionError, InitConnectRefusedError, ProtocolError, ReplyTimeoutError
from proto_client.simulator.demo_data import rows_for
from tests.support.gateway import GatewayProcess

AS_OF = date(2026, 5, 1)
GatewayFactory = Callable[..., GatewayProcess]


def _gateway(factory: GatewayFactory, *args: str) -> GatewayProcess:
    return factory("--rate", "off", "--as-of", AS_OF.isoformat(), *args)


def _stats(path: Path) -> dict[str, int]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def test_a_crawl_survives_dropped_connections_and_throttles_every_resend(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    stats_file = tmp_path / "stats.json"
    gw = _gateway(gateway_factory, "--drop-every", "3", "--stats-file", str(stats_file))
    throttled: list[None] = []
    code = "HK.00700"
    with OpenDClient(gw.host, gw.port, throttle=lambda: throttled.append(None)) as client:
        rows = [row for page in client.iter_short_interest(code) for row in page.rows]
        sent, connects = client.requests_sent, client.connects
    stats = _stats(stats_file)
    assert rows == rows_for(code, AS_OF)
    pages = -(-len(rows) // 50)
    assert stats["dropped"] > 0
    assert sent == pages + stats["dropped"]
    assert len(throttled) == sent == stats["requests"]
    assert connects == 1 + stats["dropped"]


def test_a_second_drop_after_the_reconnect_is_a_connection_error(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    stats_file = tmp_path / "stats.json"
    gw = _gateway(gateway_factory, "--drop-every", "1", "--stats-file", str(stats_file))
    throttled: list[None] = []
    with OpenDClient(gw.host, gw.port, throttle=lambda: throttled.append(None)) as client:
        with pytest.raises(GatewayConnectionError, match="again"):
            client.get_short_interest_page("US.AAPL")
        assert client.requests_sent == 2
    assert len(throttled) == 2
    assert _stats(stats_file)["requests"] == 2


def test_a_late_reply_times_out_and_the_next_call_works(gateway_factory: GatewayFactory) -> None:
    gw = _gateway(gateway_factory, "--delay", "30", "--delay-every", "2")
    with OpenDClient(gw.host, gw.port, reply_timeout=0.5) as client:
        first = client.get_short_interest_page("US.MSFT", num=5)
        with pytest.raises(ReplyTimeoutError, match="3249"):
            client.get_short_interest_page("US.MSFT", first.next_key, num=5)
        # Not resent automatically: the caller owns retries and their backoff.
        assert client.requests_sent == 2
        second = client.get_short_interest_page("US.MSFT", first.next_key, num=5)
        assert client.connects == 2
    assert list(first.rows + second.rows) == rows_for("US.MSFT", AS_OF)[:10]


@pytest.mark.parametrize("mode", ["bad-magic", "bad-sha1", "truncated", "huge-length"])
def test_each_corrupt_frame_is_a_protocol_error_and_never_resent(gateway_factory: GatewayFactory, mode: str) -> None:
    gw = _gateway(gateway_factory, "--corrupt", mode, "--corrupt-every", "2")
    # The long reply timeout proves promptness: a client waiting for more bytes would hang here instead.
    with OpenDClient(gw.host, gw.port, reply_timeout=120) as client:
        first = client.get_short_interest_page("HK.00005", num=10)
        tracemalloc.start()
        try:
            with pytest.raises(ProtocolError):
                client.get_short_interest_page("HK.00005", first.next_key, num=10)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 4 * 1024 * 1024  # a "4 GB" length is refused, not allocated
        assert client.requests_sent == 2
        second = client.get_short_interest_page("HK.00005", first.next_key, num=10)
    assert list(first.rows + second.rows) == rows_for("HK.00005", AS_OF)[:20]


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_nothing_listening_names_the_address_and_how_to_start_a_gateway() -> None:
    port = _unused_port()
    throttled: list[None] = []
    client = OpenDClient("127.0.0.1", port, connect_timeout=2, throttle=lambda: throttled.append(None))
    with pytest.raises(GatewayConnectionError) as info:
        client.connect()
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message
    assert "shortinterest gateway --demo" in message
    with pytest.raises(GatewayConnectionError, match=f"127.0.0.1:{port}"):
        client.get_short_interest_page("US.AAPL")
    assert throttled == []  # no rate-limit token spent on a request that never went out
    client.close()


def test_a_refused_init_connect_is_a_connection_error_with_the_gateways_words(
    gateway_factory: GatewayFactory,
) -> None:
    gw = _gateway(gateway_factory, "--refuse-init-connect", "client version 100 is no longer supported")
    throttled: list[None] = []
    client = OpenDClient(gw.host, gw.port, throttle=lambda: throttled.append(None))
    with pytest.raises(InitConnectRefusedError) as info:
        client.connect()
    refused = info.value
    assert isinstance(refused, GatewayConnectionError)  # the gateway is unusable, as if down
    assert (refused.ret_type, refused.ret_msg) == (-1, "client version 100 is no longer supported")
    assert str(refused) == (
        f"gateway at {gw.host}:{gw.port} refused InitConnect: client version 100 is no longer supported "
        "(retType=-1, errCode=0)"
    )
    with pytest.raises(InitConnectRefusedError):
        client.get_short_interest_page("US.AAPL")
    assert throttled == []
    client.close()


def test_bad_constructor_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="70000"):
        OpenDClient("127.0.0.1", 70000)
    with pytest.raises(ValueError, match="reply_timeout=0"):
        OpenDClient("127.0.0.1", 11111, reply_timeout=0)
