"""`shortinterest load` against gateways that behave as ones written independently of this project may:
opaque page keys, pushes between replies, keys that change across restarts, paging in a loop, and a
quote login that is down."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from pipelines.warehouse import create_engine_for, save_cursor
from proto_client.simulator.demo_data import rows_for
from tests.support.gateway import GatewayProcess
from tests.support.loader import loader_env, migrate, requests_by_code, run_load
from tests.support.rsa_keys import make_key
from tests.support.warehouse_check import (
    PAGE_SIZE,
    assert_crawl_completed,
    assert_warehouse_matches_gateway,
    read_crawl_state,
    stored_rows,
)

# Every test here waits seconds on loads, gateways, outages, services or Dagster runs: outside the inner loop.
pytestmark = pytest.mark.slow

AS_OF = date(2026, 6, 30)
CODES = ("HK.00700", "US.AAPL")


def _pages(code: str) -> int:
    return -(-len(rows_for(code, AS_OF)) // PAGE_SIZE)


def test_opaque_keys_with_pushes_between_replies_load_every_row(
    gateway_factory: Callable[..., GatewayProcess], postgres_url: str, tmp_path: Path
) -> None:
    gw = gateway_factory("--rate", "off", "--as-of", AS_OF.isoformat(), "--opaque-keys", "--notify-every", "1")
    migrate(postgres_url)
    result = run_load(loader_env(gw, postgres_url), tmp_path, *CODES, "--full")
    assert result.returncode == 0, result.output
    assert_warehouse_matches_gateway(postgres_url, CODES, AS_OF)
    assert_crawl_completed(postgres_url, CODES, AS_OF)


def test_a_stored_key_the_gateway_refuses_restarts_that_code_once(
    gateway_factory: Callable[..., GatewayProcess], postgres_url: str, tmp_path: Path
) -> None:
    stats_file = tmp_path / "stats.json"
    gw = gateway_factory(
        "--rate", "off", "--as-of", AS_OF.isoformat(), "--opaque-keys", "--stats-file", str(stats_file)
    )
    migrate(postgres_url)
    engine = create_engine_for(postgres_url)
    try:
        with engine.begin() as conn:  # a key from before a gateway upgrade
            save_cursor(conn, "US.AAPL", "VVMuQUFQTHwxNzMxNjQ2ODAwfOnDfLXKQA==")
    finally:
        engine.dispose()
    result = run_load(loader_env(gw, postgres_url), tmp_path, *CODES)
    assert result.returncode == 0, result.output
    assert result.stderr.count("refused the stored page key") == 1, result.output
    assert "US.AAPL" in result.stderr
    assert_warehouse_matches_gateway(postgres_url, CODES, AS_OF)
    assert_crawl_completed(postgres_url, CODES, AS_OF)
    assert requests_by_code(stats_file) == {"HK.00700": _pages("HK.00700"), "US.AAPL": 1 + _pages("US.AAPL")}


def test_a_code_the_gateway_pages_in_a_loop_fails_alone_within_three_requests(
    gateway_factory: Callable[..., GatewayProcess], postgres_url: str, tmp_path: Path
) -> None:
    stats_file = tmp_path / "stats.json"
    looping = CODES[0]
    gw = gateway_factory(
        "--rate", "off", "--as-of", AS_OF.isoformat(), "--opaque-keys", "--loop-code", looping,
        "--stats-file", str(stats_file),
    )  # fmt: skip
    migrate(postgres_url)
    result = run_load(loader_env(gw, postgres_url), tmp_path, *CODES, "--full")
    assert result.returncode == 1, result.output
    assert f"{looping}" in result.stdout and "loop" in result.stdout, result.output
    loaded = sum(1 for key in stored_rows(postgres_url) if key[1] == CODES[1])
    assert loaded == len(rows_for(CODES[1], AS_OF))
    assert requests_by_code(stats_file)[looping] <= 3
    assert requests_by_code(stats_file)[CODES[1]] == _pages(CODES[1])
    state = read_crawl_state(postgres_url, looping)
    assert state is not None and state.last_error is not None and "loop" in state.last_error


def test_a_gateway_not_logged_in_fails_the_whole_load_at_once(
    gateway_factory: Callable[..., GatewayProcess], postgres_url: str, tmp_path: Path
) -> None:
    stats_file = tmp_path / "stats.json"
    gw = gateway_factory("--rate", "off", "--not-logged-in", "--stats-file", str(stats_file))
    migrate(postgres_url)
    result = run_load(loader_env(gw, postgres_url), tmp_path, *CODES)
    assert result.returncode == 1, result.output
    assert result.stderr.count("not logged in to the quote server") == 1, result.output
    assert "nothing was loaded" in result.stderr and "Traceback" not in result.stderr
    assert not stats_file.exists(), "a short-interest request was sent to a gateway not logged in"


def test_opend_rsa_key_file_encrypts_the_load_and_every_mismatch_is_named(
    gateway_factory: Callable[..., GatewayProcess], postgres_url: str, tmp_path: Path
) -> None:
    key = make_key(tmp_path / "opend_rsa.pem")
    gw = gateway_factory("--rate", "off", "--as-of", AS_OF.isoformat(), "--rsa-key", str(key), "--aes", "ecb")
    migrate(postgres_url)
    env = loader_env(gw, postgres_url)

    for client_key, status, expected in [
        (None, 1, "set OPEND_RSA_KEY_FILE"),
        (make_key(tmp_path / "other_rsa.pem"), 1, "OPEND_RSA_KEY_FILE="),
        (tmp_path / "missing.pem", 2, f"OPEND_RSA_KEY_FILE: RSA key file '{tmp_path / 'missing.pem'}' does not exist"),
    ]:
        result = run_load({**env, "OPEND_RSA_KEY_FILE": str(client_key or "")}, tmp_path, *CODES)
        assert result.returncode == status, result.output
        assert expected in result.stderr, result.output
        assert status == 2 or "encrypt" in result.stderr, result.output
        assert "is OpenD running" not in result.stderr and "Traceback" not in result.stderr, result.output

    key.chmod(0o640)  # readable by the group: loads, with a warning naming the file
    result = run_load({**env, "OPEND_RSA_KEY_FILE": str(key)}, tmp_path, *CODES)
    assert result.returncode == 0, result.output
    assert f"RSA key file {key} can be read by other users" in result.stderr
    assert_warehouse_matches_gateway(postgres_url, CODES, AS_OF)
