"""Every gateway knob observed from outside: rate limit, faults, stats file, lazy end, revision, CLI."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from proto_client.errors import GatewayConnectionError, ProtocolError, RequestError
from proto_client.pb import keep_alive_pb2, qot_get_short_interest_pb2
from proto_client.records import END_OF_DATA
from proto_client.simulator.demo_data import rows_for
from tests.support.gateway import GatewayProcess, RawOpenD

AS_OF = date(2026, 4, 30)
Factory = Callable[..., GatewayProcess]


def _open(gw: GatewayProcess, *, timeout: float = 10.0) -> RawOpenD:
    peer = RawOpenD(gw.host, gw.port, timeout=timeout)
    assert peer.init_connect().retType == 0
    return peer


def _stats(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _is_rate_rejection(response: qot_get_short_interest_pb2.Response) -> bool:
    return RequestError(3249, response.retType, response.retMsg).is_rate_limited


@pytest.mark.slow
def test_rate_limit_spans_connections_ignores_rejections_and_recovers(gateway_factory: Factory, tmp_path: Path) -> None:
    stats_file = tmp_path / "stats.json"
    window = 4.0
    gw = gateway_factory("--rate", f"6/{window:g}", "--as-of", AS_OF.isoformat(), "--stats-file", str(stats_file))
    with _open(gw) as a, _open(gw) as b:
        for i in range(6):
            assert (a if i % 2 else b).short_interest("HK.00700", num=1).retType == 0
        last_accepted = time.monotonic()
        rejected = a.short_interest("US.AAPL", num=1)
        assert rejected.retType == -1
        assert rejected.retMsg == "request too frequent, at most 6 requests per 4 seconds"
        assert _is_rate_rejection(rejected)
        assert _is_rate_rejection(b.short_interest("US.AAPL", num=1))
        # Other protos are not limited.
        alive = b.call(1004, keep_alive_pb2.Request(c2s=keep_alive_pb2.C2S(time=0)), keep_alive_pb2.Response)
        assert alive.retType == 0
        stats = _stats(stats_file)
        assert (stats["accepted"], stats["rejected_rate_limit"]) == (6, 2)
        assert stats["by_code"] == {"HK.00700": 6}

        # Rejections half-way through the window must not hold the window shut once it has passed.
        time.sleep(window / 2)
        assert all(_is_rate_rejection(a.short_interest("US.AAPL", num=1)) for _ in range(3))
        time.sleep(max(0.0, last_accepted + window + 0.3 - time.monotonic()))
        for i in range(6):
            response = (a if i % 2 else b).short_interest("US.AAPL", num=1)
            assert response.retType == 0, response.retMsg
        assert _is_rate_rejection(a.short_interest("US.AAPL", num=1))

    stats = _stats(stats_file)
    assert stats["accepted"] == 12
    assert stats["rejected_rate_limit"] == 6
    assert stats["by_code"] == {"HK.00700": 6, "US.AAPL": 6}
    assert len(stats["accepted_at"]) == 12
    assert all(isinstance(t, float) for t in stats["accepted_at"])
    assert stats["accepted_at"] == sorted(stats["accepted_at"])


@pytest.mark.slow
def test_drop_every_closes_the_connection_instead_of_answering(gateway_factory: Factory, tmp_path: Path) -> None:
    stats_file = tmp_path / "stats.json"
    gw = gateway_factory("--rate", "off", "--drop-every", "3", "--stats-file", str(stats_file))
    with _open(gw) as a, _open(gw) as b:
        assert a.short_interest("US.AAPL").retType == 0
        assert b.short_interest("US.AAPL").retType == 0
        a.send(3249, a.short_interest_request(11, "AAPL").SerializeToString())
        with pytest.raises((GatewayConnectionError, ConnectionResetError)):
            a.receive()
        assert b.short_interest("US.AAPL").retType == 0  # the 4th request, on the surviving connection
    stats = _stats(stats_file)
    assert (stats["requests"], stats["dropped"], stats["accepted"]) == (4, 1, 3)


@pytest.mark.slow
def test_delay_holds_back_every_nth_reply(gateway_factory: Factory, tmp_path: Path) -> None:
    stats_file = tmp_path / "stats.json"
    gw = gateway_factory("--rate", "off", "--delay", "2", "--delay-every", "2", "--stats-file", str(stats_file))
    with _open(gw) as peer:
        assert peer.short_interest("HK.00700").retType == 0
        serial = peer.send(3249, peer.short_interest_request(1, "00700").SerializeToString())
        peer.sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            peer.receive()  # a 2-second delay cannot have elapsed yet
        peer.sock.settimeout(10.0)
        frame = peer.receive()
        assert frame.serial_no == serial
    assert _stats(stats_file)["delayed"] == 1


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("bad-magic", "magic"),
        ("bad-sha1", "SHA-1 mismatch"),
        ("truncated", "closed mid-frame"),
        ("huge-length", "4294967280-byte body"),
    ],
)
def test_corrupt_modes_reach_the_client_as_protocol_errors(
    gateway_factory: Factory, tmp_path: Path, mode: str, message: str
) -> None:
    stats_file = tmp_path / "stats.json"
    gw = gateway_factory("--rate", "off", "--corrupt", mode, "--corrupt-every", "2", "--stats-file", str(stats_file))
    with _open(gw) as peer:
        assert peer.short_interest("US.NVDA").retType == 0
        peer.send(3249, peer.short_interest_request(11, "NVDA").SerializeToString())
        with pytest.raises(ProtocolError, match=message):
            peer.receive()
    with _open(gw) as peer:
        assert peer.short_interest("US.NVDA").retType == 0  # the 3rd request is clean again
    assert _stats(stats_file)["corrupted"] == 1


def test_reject_every_refuses_as_too_frequent_without_using_budget(gateway_factory: Factory, tmp_path: Path) -> None:
    stats_file = tmp_path / "stats.json"
    gw = gateway_factory("--rate", "3/60", "--reject-every", "2", "--stats-file", str(stats_file))
    with _open(gw) as peer:
        results = [peer.short_interest("US.SPY", num=1) for _ in range(6)]
    assert [r.retType for r in results] == [0, -1, 0, -1, 0, -1]
    assert all(_is_rate_rejection(r) for r in results[1::2])
    stats = _stats(stats_file)
    assert (stats["accepted"], stats["rejected_injected"], stats["rejected_rate_limit"]) == (3, 3, 0)


@pytest.mark.parametrize(("lazy", "requests"), [(False, 8), (True, 9)])
def test_lazy_end_adds_an_empty_last_page(gateway_factory: Factory, lazy: bool, requests: int) -> None:
    as_of = date(2026, 5, 11)  # FINRA publishes the 30 April figures
    rows = rows_for("US.MSFT", as_of)
    assert len(rows) == 8 * 41  # so a 41-row page size ends on an exactly full page
    gw = gateway_factory("--rate", "off", "--as-of", as_of.isoformat(), *(["--lazy-end"] if lazy else []))
    pages: list[qot_get_short_interest_pb2.Response] = []
    with _open(gw) as peer:
        key: str | None = None
        while not pages or pages[-1].s2c.nextKey != END_OF_DATA:
            pages.append(peer.short_interest("US.MSFT", key, num=41))
            key = pages[-1].s2c.nextKey
    assert len(pages) == requests
    assert sum(len(p.s2c.usItemList) for p in pages) == len(rows)
    if lazy:
        assert pages[-2].s2c.nextKey == str(rows[-1].timestamp)
        assert len(pages[-1].s2c.usItemList) == 0


def test_revision_changes_the_newest_rows_and_as_of_cuts_the_history(gateway_factory: Factory) -> None:
    as_of = date(2025, 7, 4)  # the SFC publishes the 27 June positions
    gw = gateway_factory("--rate", "off", "--as-of", as_of.isoformat(), "--revision", "1")
    with _open(gw) as peer:
        page = peer.short_interest("HK.00700", num=3).s2c.hkItemList
    expected = rows_for("HK.00700", as_of, revision=1)[:3]
    original = rows_for("HK.00700", as_of)[:3]
    assert [i.aggregatedShort for i in page] == [r.aggregated_short for r in expected]
    assert [i.timestamp for i in page] == [r.timestamp for r in original]
    assert page[0].aggregatedShort != original[0].aggregated_short
    assert page[2].aggregatedShort == original[2].aggregated_short
    assert page[0].timestampStr == "2025-06-27"


def test_extra_codes_extend_the_universe(gateway_factory: Factory) -> None:
    gw = gateway_factory("--rate", "off", "--as-of", AS_OF.isoformat(), "--extra-codes", "10")
    with _open(gw) as peer:
        assert (
            peer.short_interest("US.SYN0005").s2c.usItemList[0].timestamp == rows_for("US.SYN0005", AS_OF)[0].timestamp
        )
        assert peer.short_interest("HK.89005").retType == 0
        assert peer.short_interest("HK.89006").retMsg == "unknown security HK.89006"


def test_keepalive_interval_and_idle_timeout(gateway_factory: Factory) -> None:
    gw = gateway_factory("--keepalive-interval", "3", "--idle-timeout", "0.5")
    with RawOpenD(gw.host, gw.port) as peer:
        assert peer.init_connect().s2c.keepAliveInterval == 3
        # Silence past the idle timeout: the gateway hangs up (recv sees EOF, well before the 10 s socket timeout).
        assert peer.sock.recv(1) == b""


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_refuse_init_connect_answers_every_init_connect_with_the_message(gateway_factory: Factory) -> None:
    gw = gateway_factory("--refuse-init-connect", "client version not accepted")
    for _ in range(2):
        with RawOpenD(gw.host, gw.port) as peer:
            refused = peer.init_connect()
            assert (refused.retType, refused.retMsg) == (-1, "client version not accepted")
            assert not refused.HasField("s2c")
            # No session was opened: anything after it is refused as coming before InitConnect.
            after = peer.call(1004, keep_alive_pb2.Request(c2s=keep_alive_pb2.C2S(time=0)), keep_alive_pb2.Response)
            assert after.retType == -1 and "InitConnect must be the first request" in after.retMsg


def test_demo_flag_is_required() -> None:
    result = _cli("--port", "0")
    assert result.returncode == 2
    assert "--demo is required" in result.stderr


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--rate", "30"], "--rate"),
        (["--as-of", "2026-13-01"], "--as-of"),
        (["--corrupt", "sideways"], "--corrupt"),
        (["--drop-every", "-2"], "--drop-every"),
        (["--extra-codes", "100000"], "extra-codes"),
        (["--refuse-init-connect", " "], "refuse-init-connect"),
    ],
)
def test_bad_knobs_are_named(args: list[str], named: str) -> None:
    result = _cli("--demo", "--port", "0", *args)
    assert result.returncode == 2
    assert named in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signals_stop_the_gateway_cleanly_with_connections_open(gateway_factory: Factory, signum: int) -> None:
    gw = gateway_factory()
    with _open(gw) as peer:
        gw.proc.send_signal(signum)
        assert gw.proc.wait(timeout=10) == 0
        assert peer.sock.recv(1) == b""
    assert any("gateway stopped" in line for line in gw.output)


@pytest.mark.slow
def test_port_in_use_is_a_clear_error(gateway_factory: Factory) -> None:
    gw = gateway_factory()
    result = _cli("--demo", "--host", gw.host, "--port", str(gw.port))
    assert result.returncode == 1
    assert f"cannot listen on {gw.host}:{gw.port}" in result.stderr


def test_port_zero_picks_a_free_port(gateway_factory: Factory) -> None:
    first, second = gateway_factory(), gateway_factory()
    assert first.port != second.port
    for gw in (first, second):
        with socket.create_connection((gw.host, gw.port), timeout=10):
            pass
