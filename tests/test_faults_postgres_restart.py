"""PostgreSQL restarted under a running load: the load retries or fails the code cleanly, a rerun completes.

Runs on a private cluster (tests/support/postgres_cluster.py): the shared server cannot be restarted
under every other test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest

from proto_client.simulator.demo_data import rows_for
from tests.support.gateway import GatewayProcess
from tests.support.loader import loader_env, migrate, start_load, wait_for
from tests.support.postgres_cluster import PostgresCluster, private_postgres_cluster
from tests.support.warehouse_check import (
    assert_crawl_completed,
    assert_warehouse_matches_gateway,
    assert_whole_pages_with_cursor,
    read_crawl_state,
)

AS_OF = date(2020, 6, 30)
CODES = ("HK.00700", "US.AAPL")  # 9 and 4 pages
RATE = "4/1"  # slow enough for the restart to land mid-history
OUTAGE_SEEN = "warehouse database error"  # how the loader reports a database failure, retried or not


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    with private_postgres_cluster() as running:
        yield running


def test_postgres_restart_mid_load_then_rerun_completes(
    gateway_factory: Callable[..., GatewayProcess], cluster: PostgresCluster, tmp_path: Path
) -> None:
    gw = gateway_factory("--rate", RATE, "--as-of", AS_OF.isoformat())
    url = cluster.url
    migrate(url)
    env = loader_env(gw, url, rate=RATE)
    first = CODES[0]

    loader = start_load(env, tmp_path, *CODES, "--full")

    def pages_committed() -> bool:
        state = read_crawl_state(url, first)
        return state is not None and state.cursor is not None

    wait_for(lambda: pages_committed() or not loader.running(), f"{first} to commit a page")
    assert loader.running(), f"the load ended before the restart:\n{loader.wait().output}"

    cluster.stop("fast")
    # Keep the server down until the loader has run into the outage twice: once losing its connection,
    # once more finding no server at all.
    wait_for(
        lambda: loader.stdout_so_far().count(OUTAGE_SEEN) >= 2 or not loader.running(),
        "the loader to run into the outage",
    )
    cluster.start()
    outcome = loader.wait(timeout=120)

    assert OUTAGE_SEEN in outcome.stdout, f"the loader never noticed the database going away:\n{outcome.output}"
    assert outcome.returncode in (0, 1), outcome.output
    if outcome.returncode == 1:
        # Failing is fine if it is clean: only warehouse errors, each naming its code, nothing else broken.
        failures = [line.strip() for line in outcome.stdout.splitlines() if " FAILED: " in line]
        assert failures, f"exit 1 without a failed code:\n{outcome.output}"
        for line in failures:
            assert OUTAGE_SEEN in line and any(code in line for code in CODES), outcome.output
    assert "Traceback" not in outcome.stderr, outcome.output

    # Whatever the first load left: whole pages, newest first, and a cursor right after them.
    for code in CODES:
        stored = assert_whole_pages_with_cursor(url, code, AS_OF)
        if outcome.returncode == 0:
            assert stored == len(rows_for(code, AS_OF)), f"{code}: load reported success with {stored} rows"

    # The next scheduled load, not a forced full one: it resumes whatever the first left unfinished.
    rerun = start_load(env, tmp_path, *CODES).wait(timeout=120)

    assert rerun.returncode == 0, rerun.output
    assert_warehouse_matches_gateway(url, CODES, AS_OF)
    assert_crawl_completed(url, CODES, AS_OF)
