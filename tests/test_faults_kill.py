"""A loader killed with SIGKILL mid-crawl loses at most the page in flight, and the next run resumes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from proto_client.simulator.demo_data import rows_for
from tests.support.gateway import GatewayProcess, first_page
from tests.support.loader import loader_env, migrate, requests_by_code, start_load, wait_for
from tests.support.warehouse_check import (
    PAGE_SIZE,
    assert_crawl_completed,
    assert_warehouse_matches_gateway,
    assert_whole_pages_with_cursor,
    read_crawl_state,
)

# Every test here waits seconds on loads, gateways, outages, services or Dagster runs: outside the inner loop.
pytestmark = pytest.mark.slow(seconds=9)

AS_OF = date(2026, 6, 30)
CODES = ("HK.00700", "US.AAPL")  # 15 and 7 pages: long enough to die in the middle of the first
RATE = "4/1"  # slow enough that the kill lands mid-history


def _pages(code: str) -> int:
    return -(-len(rows_for(code, AS_OF)) // PAGE_SIZE)


@pytest.mark.parametrize("keys", ["timestamp keys", "opaque keys"])
def test_sigkill_mid_full_crawl_then_rerun_resumes_and_matches_gateway(
    gateway_factory: Callable[..., GatewayProcess], postgres_url: str, tmp_path: Path, keys: str
) -> None:
    stats_file = tmp_path / "stats.json"
    opaque = keys == "opaque keys"
    gw = gateway_factory(
        "--rate", RATE, "--as-of", AS_OF.isoformat(), "--stats-file", str(stats_file), *(["--opaque-keys"] * opaque)
    )
    migrate(postgres_url)
    env = loader_env(gw, postgres_url, rate=RATE)
    first, second = CODES

    loader = start_load(env, tmp_path, *CODES, "--full")

    def some_pages_committed() -> bool:
        state = read_crawl_state(postgres_url, first)
        return state is not None and state.cursor is not None and requests_by_code(stats_file).get(first, 0) >= 4

    wait_for(lambda: some_pages_committed() or not loader.running(), f"{first} to commit some pages")
    killed = loader.kill()
    assert killed.returncode == -9, f"the loader finished before it could be killed:\n{killed.output}"

    # What the kill left behind: whole pages, newest first, and a cursor pointing right after them.
    kept = assert_whole_pages_with_cursor(postgres_url, first, AS_OF, opaque=opaque)
    history = rows_for(first, AS_OF)
    assert 0 < kept < len(history), f"{kept} rows kept: the kill did not land mid-history"
    # The stored key, sent back verbatim, asks for the page right after the kept rows.
    state = read_crawl_state(postgres_url, first)
    assert state is not None and state.cursor is not None
    assert first_page(gw, first, state.cursor).rows[0] == history[kept]
    requests_before = requests_by_code(stats_file)

    rerun = start_load(env, tmp_path, *CODES, "--full").wait()
    assert rerun.returncode == 0, rerun.output
    assert f"{first} resumed" in rerun.stdout, rerun.output

    assert_warehouse_matches_gateway(postgres_url, CODES, AS_OF)
    assert_crawl_completed(postgres_url, CODES, AS_OF)

    requests_after = requests_by_code(stats_file)
    rerun_first = requests_after[first] - requests_before.get(first, 0)
    kept_pages = kept // PAGE_SIZE
    # Resuming reads the pages after the cursor, then the newest page again for rows published meanwhile.
    assert rerun_first == _pages(first) - kept_pages + 1, (
        f"rerun sent {rerun_first} requests for {first}; resuming after {kept_pages} stored pages of "
        f"{_pages(first)} needs {_pages(first) - kept_pages + 1}"
    )
    assert rerun_first < _pages(first), "the rerun re-read the whole history instead of resuming"
    assert requests_after.get(second, 0) - requests_before.get(second, 0) == _pages(second)
