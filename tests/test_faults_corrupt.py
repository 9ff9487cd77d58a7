"""Malformed gateway replies fail the code they answer, clearly and cheaply; the other codes still load."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from tests.support.gateway import GatewayProcess
from tests.support.loader import loader_env, migrate, read_stats, run_load
from tests.support.warehouse_check import assert_crawl_completed, assert_warehouse_matches_gateway, read_crawl_state

# Every test here waits seconds on loads, gateways, outages, services or Dagster runs: outside the inner loop.
pytestmark = pytest.mark.slow

AS_OF = date(2013, 3, 1)  # one page per code
CODES = ("HK.00700", "US.AAPL", "HK.00005")
VICTIM = "US.AAPL"  # the second request, and so the one --corrupt-every 2 hits
SURVIVORS = ("HK.00700", "HK.00005")
# Far above what the loader needs (~100 MB), far below what believing a "4 GB" length would take.
MAX_PEAK_RSS = 500 * 1024 * 1024

# What the error must say for each way a frame can be broken.
EXPECTED_PROBLEM = {
    "bad-magic": "bad frame magic",
    "bad-sha1": "SHA-1 mismatch",
    "truncated": "closed mid-frame",
    "huge-length": "claims a 4294967280-byte body",
}


@pytest.mark.parametrize("mode", sorted(EXPECTED_PROBLEM))
def test_malformed_reply_fails_only_its_code(
    mode: str, gateway_factory: Callable[..., GatewayProcess], postgres_url: str, tmp_path: Path
) -> None:
    stats_file = tmp_path / "stats.json"
    gw = gateway_factory(
        "--rate",
        "off",
        "--as-of",
        AS_OF.isoformat(),
        "--corrupt",
        mode,
        "--corrupt-every",
        "2",
        "--stats-file",
        str(stats_file),
    )
    migrate(postgres_url)

    result = run_load(loader_env(gw, postgres_url), tmp_path, *CODES, timeout=60)

    assert read_stats(stats_file)["corrupted"] == 1, result.output
    assert result.returncode == 1, result.output
    problem = EXPECTED_PROBLEM[mode]
    failed_lines = [line for line in result.stdout.splitlines() if line.strip().startswith(f"{VICTIM}:")]
    assert failed_lines, f"the summary does not name {VICTIM} as failed:\n{result.output}"
    assert problem in failed_lines[-1], f"{VICTIM}'s failure does not say {problem!r}:\n{result.output}"
    assert "1 code failed" in result.stdout, result.output
    assert result.peak_rss_bytes < MAX_PEAK_RSS, f"loader peaked at {result.peak_rss_bytes / 2**20:.0f} MiB"

    state = read_crawl_state(postgres_url, VICTIM)
    assert state is not None and state.last_error is not None and problem in state.last_error, state
    assert state.cursor is None, "a one-page history that failed left a resume cursor"
    # No rows at all for the failed code, every row for the others.
    assert_warehouse_matches_gateway(postgres_url, SURVIVORS, AS_OF)
    assert_crawl_completed(postgres_url, SURVIVORS, AS_OF)
