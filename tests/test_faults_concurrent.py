"""Two full loads of the same codes at once: same rows written twice, one row per key, no deadlock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from proto_client.simulator.demo_data import rows_for
from tests.support.gateway import GatewayProcess
from tests.support.loader import loader_env, migrate, read_stats, start_load
from tests.support.warehouse_check import (
    PAGE_SIZE,
    assert_crawl_completed,
    assert_warehouse_matches_gateway,
    stored_count,
)

# Every test here waits seconds on loads, gateways, outages, services or Dagster runs: outside the inner loop.
pytestmark = pytest.mark.slow

AS_OF = date(2016, 1, 1)
CODES = ("HK.00700", "US.AAPL", "HK.00005", "US.TSLA")  # 4, 2, 4 and 2 pages
RATE = "12/1"  # one budget for both loaders, and the gateway enforces the same


def test_two_full_loads_of_the_same_codes_at_once(
    gateway_factory: Callable[..., GatewayProcess], database_url: str, tmp_path: Path
) -> None:
    stats_file = tmp_path / "stats.json"
    gw = gateway_factory("--rate", RATE, "--as-of", AS_OF.isoformat(), "--stats-file", str(stats_file))
    migrate(database_url)
    env = loader_env(gw, database_url, rate=RATE)

    loaders = [start_load(env, tmp_path, *CODES, "--full") for _ in range(2)]
    results = [loader.wait(timeout=90) for loader in loaders]

    for result in results:
        assert result.returncode == 0, result.output
    stats = read_stats(stats_file)
    pages = sum(-(-len(rows_for(code, AS_OF)) // PAGE_SIZE) for code in CODES)
    # However the two loaders divide the work between them, each page is read at least once, at most twice.
    accepted = stats["accepted"]
    assert isinstance(accepted, int) and pages <= accepted <= 2 * pages, stats
    assert stats["rejected_rate_limit"] == 0, "the shared limiter let the two loaders exceed the gateway's limit"
    for code in CODES:
        assert stored_count(database_url, code) == len(rows_for(code, AS_OF)), code
    assert_warehouse_matches_gateway(database_url, CODES, AS_OF)
    assert_crawl_completed(database_url, CODES, AS_OF)
