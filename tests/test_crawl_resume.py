"""A full crawl killed with SIGKILL resumes from its cursor: at most one page lost, the result as clean."""

from __future__ import annotations

import math
import signal
import subprocess
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from pipelines.warehouse import create_engine_for, get_crawl_state, upgrade
from tests.support.crawl import REPO_ROOT, cli_command, cli_env, expected_rows, read_stats, run_cli, stored_rows
from tests.support.gateway import GatewayProcess

# Every test here waits seconds on loads, gateways, outages, services or Dagster runs: outside the inner loop.
pytestmark = pytest.mark.slow

CODE = "HK.00700"  # 15 pages
AS_OF = date(2026, 5, 15)
LATER_AS_OF = date(2026, 5, 29)  # two more weeks published while the crawl was down
LATER_NEWEST = date(2026, 5, 22)  # the SFC published those positions on 29 May


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_killed_full_crawl_resumes_and_ends_equal_to_a_clean_run(
    postgres_url: str, gateway_factory: Callable[..., GatewayProcess], tmp_path: Path
) -> None:
    upgrade(postgres_url)
    engine = create_engine_for(postgres_url)
    try:
        first = gateway_factory("--rate", "off", "--as-of", AS_OF.isoformat())
        # 3 requests per 1.2 s makes the 15-page crawl take ~6 s: slow enough to kill in the middle.
        env = cli_env(**first.env(), OPEND_RATE_LIMIT="3/1", SHORTINTEREST_DATABASE_URL=postgres_url)
        proc = subprocess.Popen(cli_command("load", "--full", CODE), env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL)

        def mid_crawl() -> bool:
            assert proc.poll() is None, "the load finished before it could be killed"
            with engine.connect() as conn:
                state = get_crawl_state(conn, CODE)
            return state is not None and state.full_crawl_cursor is not None and len(stored_rows(engine, CODE)) >= 150

        wait_for(mid_crawl, "the crawl to store three pages")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        first.stop()
        with engine.connect() as conn:
            cursor = get_crawl_state(conn, CODE).full_crawl_cursor  # type: ignore[union-attr]
        stored_before = len(stored_rows(engine, CODE))
        assert cursor is not None and 150 <= stored_before < len(expected_rows(CODE, AS_OF))

        stats_file = tmp_path / "stats.json"
        later = gateway_factory("--rate", "off", "--as-of", LATER_AS_OF.isoformat(), "--stats-file", str(stats_file))
        rerun = run_cli(
            "load", CODE, env={**later.env(), "OPEND_RATE_LIMIT": "100/1", "SHORTINTEREST_DATABASE_URL": postgres_url}
        )
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        assert "resumed" in rerun.stdout

        expected = expected_rows(CODE, LATER_AS_OF)
        assert stored_rows(engine, CODE) == expected  # what a clean run against this gateway stores
        requests = read_stats(stats_file)["accepted"]
        assert requests < math.ceil(len(expected) / 50)
        # The tail from the cursor, then one page from the top for the weeks published meanwhile.
        tail_pages = math.ceil(sum(1 for row in expected if row[2] < int(cursor)) / 50)
        assert requests == tail_pages + 1
        with engine.connect() as conn:
            state = get_crawl_state(conn, CODE)
        assert state is not None and state.full_crawl_cursor is None and state.newest_trade_date == LATER_NEWEST
    finally:
        engine.dispose()
