"""The client over encrypted links to gateway processes: both AES modes, pushes in between, and every mismatch
of keys failing fast with a message that says what to fix."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from proto_client.client import OpenDClient
from proto_client.errors import EncryptionError, GatewayConnectionError
from proto_client.simulator.demo_data import rows_for
from tests.support.gateway import GatewayProcess, accepting_then_closing
from tests.support.rsa_keys import make_key

AS_OF = date(2026, 4, 30)
CONNECT_TIMEOUT = 5.0


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("keys")
    return make_key(folder / "opend_rsa.pem"), make_key(folder / "other_rsa.pem")


def _all_rows(client: OpenDClient, code: str) -> list[object]:
    return [row for page in client.iter_short_interest(code) for row in page.rows]


@pytest.mark.slow
@pytest.mark.parametrize(("aes", "mode"), [("auto", "AES-CBC"), ("ecb", "FTAES-ECB")])
def test_client_pages_through_an_encrypting_gateway(
    gateway_factory: Callable[..., GatewayProcess], keys: tuple[Path, Path], aes: str, mode: str
) -> None:
    key, _ = keys
    gw = gateway_factory("--rate", "off", "--as-of", AS_OF.isoformat(), "--rsa-key", str(key), "--aes", aes)
    with OpenDClient(gw.host, gw.port, rsa_key_file=key, check_quote_login=True) as client:
        assert client.encryption == mode
        assert client.rsa_key_file == key
        for code in ("HK.00700", "US.AAPL"):
            assert _all_rows(client, code) == list(rows_for(code, AS_OF))
        assert client.get_global_state().qot_logined


@pytest.mark.slow
def test_pushes_between_replies_are_skipped_on_an_encrypted_link(
    gateway_factory: Callable[..., GatewayProcess], keys: tuple[Path, Path]
) -> None:
    key, _ = keys
    gw = gateway_factory(
        "--rate", "off", "--as-of", AS_OF.isoformat(), "--rsa-key", str(key), "--notify-every", "1", "--opaque-keys"
    )
    with OpenDClient(gw.host, gw.port, rsa_key_file=key) as client:
        assert _all_rows(client, "HK.00700") == list(rows_for("HK.00700", AS_OF))
        assert client.get_global_state().qot_logined


def _connect_failure(gw: GatewayProcess, key: Path | None) -> tuple[EncryptionError, float]:
    client = OpenDClient(gw.host, gw.port, rsa_key_file=key, connect_timeout=CONNECT_TIMEOUT)
    start = time.monotonic()
    with pytest.raises(EncryptionError) as info:
        client.get_short_interest_page("HK.00700")
    elapsed = time.monotonic() - start
    client.close()
    assert isinstance(info.value, GatewayConnectionError)
    message = str(info.value)
    assert "encrypt" in message and "OPEND_RSA_KEY_FILE" in message, message
    assert "is OpenD running" not in message
    return info.value, elapsed


@pytest.mark.parametrize("case", ["wrong key", "no key", "key against a plain gateway"])
def test_mismatched_encryption_fails_within_the_connect_timeout(
    gateway_factory: Callable[..., GatewayProcess], keys: tuple[Path, Path], case: str
) -> None:
    key, other = keys
    gateway_key, client_key = {
        "wrong key": (key, other),
        "no key": (key, None),
        "key against a plain gateway": (None, key),
    }[case]
    args = ["--rsa-key", str(gateway_key)] if gateway_key else []
    gw = gateway_factory("--rate", "off", "--stats-file", str(key.parent / f"{case}.json"), *args)
    error, elapsed = _connect_failure(gw, client_key)
    assert elapsed < CONNECT_TIMEOUT
    if client_key is not None:
        assert str(client_key) in str(error)
    assert not (key.parent / f"{case}.json").exists(), "a short-interest request got through"


def test_a_gateway_closing_connections_while_it_restarts_is_no_encryption_mismatch(
    gateway_factory: Callable[..., GatewayProcess],
) -> None:
    """A gateway going down or coming up may accept a connection and close it during InitConnect. For a client
    whose settings completed InitConnect with it before, that is a dropped connection (an outage to wait out),
    not a key that disagrees; a client that never connected still hears about encryption."""
    gw = gateway_factory("--rate", "off")
    client = OpenDClient(gw.host, gw.port, connect_timeout=5, reply_timeout=5)
    client.get_global_state()
    gw.stop()
    try:
        with accepting_then_closing(gw.host, gw.port):
            with pytest.raises(GatewayConnectionError) as dropped:
                client.get_global_state()
            assert not isinstance(dropped.value, EncryptionError)
            assert "probably restarting" in str(dropped.value)
            with pytest.raises(EncryptionError), OpenDClient(gw.host, gw.port, connect_timeout=5) as fresh:
                fresh.get_global_state()
    finally:
        client.close()
