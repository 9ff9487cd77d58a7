"""A misbehaving gateway (dropped connections, late replies, frequency rejections) costs retries, not rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from proto_client.simulator.demo_data import rows_for
from tests.support.gateway import GatewayProcess
from tests.support.loader import loader_env, migrate, read_stats, run_load
from tests.support.warehouse_check import PAGE_SIZE, assert_crawl_completed, assert_warehouse_matches_gateway

# Every test here waits seconds on loads, gateways, outages, services or Dagster runs: outside the inner loop.
pytestmark = pytest.mark.slow

AS_OF = date(2016, 1, 1)
CODES = ("HK.00700", "US.AAPL")  # 4 and 2 pages


def _total_pages() -> int:
    return sum(-(-len(rows_for(code, AS_OF)) // PAGE_SIZE) for code in CODES)


def _stat(stats_file: Path, name: str) -> int:
    value = read_stats(stats_file)[name]
    assert isinstance(value, int)
    return value


def test_connection_dropped_every_third_request(
    gateway_factory: Callable[..., GatewayProcess], postgres_url: str, tmp_path: Path
) -> None:
    stats_file = tmp_path / "stats.json"
    gw = gateway_factory(
        "--rate", "off", "--as-of", AS_OF.isoformat(), "--drop-every", "3", "--stats-file", str(stats_file)
    )
    migrate(postgres_url)

    result = run_load(loader_env(gw, postgres_url), tmp_path, *CODES, "--full")

    assert result.returncode == 0, result.output
    dropped = _stat(stats_file, "dropped")
    assert dropped >= 2, f"only {dropped} connections dropped: the fault was not exercised"
    # Each dropped request is sent again on a new connection; nothing else is re-read.
    assert _stat(stats_file, "requests") == _total_pages() + dropped
    assert_warehouse_matches_gateway(postgres_url, CODES, AS_OF)
    assert_crawl_completed(postgres_url, CODES, AS_OF)


def test_replies_delayed_past_the_reply_timeout(
    gateway_factory: Callable[..., GatewayProcess], postgres_url: str, tmp_path: Path
) -> None:
    stats_file = tmp_path / "stats.json"
    gw = gateway_factory(
        "--rate",
        "off",
        "--as-of",
        AS_OF.isoformat(),
        "--delay",
        "4",
        "--delay-every",
        "3",
        "--stats-file",
        str(stats_file),
    )
    migrate(postgres_url)
    env = loader_env(gw, postgres_url)
    env["OPEND_REPLY_TIMEOUT"] = "1"

    result = run_load(env, tmp_path, *CODES, "--full")

    assert result.returncode == 0, result.output
    delayed = _stat(stats_file, "delayed")
    assert delayed >= 2, f"only {delayed} replies delayed: the fault was not exercised"
    # A late reply is abandoned after OPEND_REPLY_TIMEOUT and the page asked for again.
    assert _stat(stats_file, "requests") == _total_pages() + delayed, (
        "late replies were waited for instead of timing out and retrying:\n" + result.output
    )
    assert "no reply" in result.stdout, result.output
    assert_warehouse_matches_gateway(postgres_url, CODES, AS_OF)
    assert_crawl_completed(postgres_url, CODES, AS_OF)


def test_frequency_rejections_despite_a_correct_limiter_are_retried(
    gateway_factory: Callable[..., GatewayProcess], postgres_url: str, tmp_path: Path
) -> None:
    stats_file = tmp_path / "stats.json"
    rate = "30/3"
    gw = gateway_factory(
        "--rate", rate, "--as-of", AS_OF.isoformat(), "--reject-every", "4", "--stats-file", str(stats_file)
    )
    migrate(postgres_url)

    result = run_load(loader_env(gw, postgres_url, rate=rate), tmp_path, *CODES, "--full")

    assert result.returncode == 0, result.output
    rejected = _stat(stats_file, "rejected_injected")
    assert rejected >= 1, "no request was rejected: the fault was not exercised"
    assert _stat(stats_file, "rejected_rate_limit") == 0, "the loader's own limiter let too many requests through"
    assert _stat(stats_file, "requests") == _total_pages() + rejected
    assert "retry" in result.stdout, f"rejections were not reported as retries:\n{result.output}"
    assert_warehouse_matches_gateway(postgres_url, CODES, AS_OF)
    assert_crawl_completed(postgres_url, CODES, AS_OF)
