"""The warehouse's PostgreSQL goes away under a running load (a restart or failover): the load waits.

Once for the CLI load, once for a Dagster run, which must also record every code's materialization.

Runs on a private cluster (tests/support/postgres_cluster.py): the shared server cannot be restarted
under every other test.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from pipelines.config import RateLimit, Settings
from pipelines.orchestration.jobs import asset_key_for
from pipelines.orchestration.metadata import read_summary
from pipelines.orchestration.resources import resources_from_settings
from pipelines.orchestration.runner import MarketRun, run_market
from proto_client.security import Market
from proto_client.simulator.demo_data import rows_for
from tests.support.gateway import GatewayProcess
from tests.support.loader import loader_env, migrate, requests_served, start_load, wait_for
from tests.support.postgres_cluster import PostgresCluster, private_postgres_cluster
from tests.support.warehouse_check import (
    PAGE_SIZE,
    assert_crawl_completed,
    assert_warehouse_matches_gateway,
    read_crawl_state,
)

# Every test here waits seconds on loads, gateways, outages, services or Dagster runs: outside the inner loop.
pytestmark = pytest.mark.slow(seconds=10)

AS_OF = date(2020, 6, 30)
CODES = ("HK.00700", "US.AAPL")  # 9 and 4 pages
RATE = "4/1"  # slow enough for the restart to land mid-history
# The load waits at most a minute, so it probes at most 1.5 s apart (15 s at the default bound): down for
# several times that, the warehouse is probed, found down and found back, as in a longer restart.
BOUND = "60"
DOWN_FOR = 6.0


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    with private_postgres_cluster() as running:
        yield running


def test_postgres_down_mid_load_the_load_waits_and_completes(
    gateway_factory: Callable[..., GatewayProcess], cluster: PostgresCluster, tmp_path: Path
) -> None:
    stats = tmp_path / "stats.json"
    gw = gateway_factory("--rate", RATE, "--as-of", AS_OF.isoformat(), "--stats-file", str(stats))
    url = cluster.url
    migrate(url)
    env = {**loader_env(gw, url, rate=RATE), "SHORTINTEREST_OUTAGE_TIMEOUT": BOUND}
    first = CODES[0]

    loader = start_load(env, tmp_path, *CODES, "--full")

    def pages_committed() -> bool:
        state = read_crawl_state(url, first)
        return state is not None and state.cursor is not None

    wait_for(lambda: pages_committed() or not loader.running(), f"{first} to commit a page")
    assert loader.running(), f"the load ended before the restart:\n{loader.wait().output}"

    cluster.stop("fast")
    time.sleep(DOWN_FOR)
    assert loader.running(), f"the load did not wait for the warehouse:\n{loader.wait().output}"
    cluster.start()
    outcome = loader.wait(timeout=120)

    assert outcome.returncode == 0, outcome.output
    assert_warehouse_matches_gateway(url, CODES, AS_OF)
    assert_crawl_completed(url, CODES, AS_OF)
    # A page fetched while the warehouse went away may be fetched again after it; nothing else is.
    clean = sum(-(-len(rows_for(code, AS_OF)) // PAGE_SIZE) for code in CODES)
    assert requests_served(stats) <= clean + 2, outcome.output
    assert outcome.stdout.count("is down since") == 1, outcome.output
    assert outcome.stdout.count("answers again") == 1, outcome.output
    assert "the warehouse database" in outcome.stdout and "FAILED" not in outcome.stdout, outcome.output
    assert "Traceback" not in outcome.stderr, outcome.output


def test_a_dagster_run_through_a_postgres_restart_materializes_every_code(
    gateway_factory: Callable[..., GatewayProcess], cluster: PostgresCluster
) -> None:
    codes = ("HK.09988", "HK.00700")  # 1 and 9 pages: the first is materialized before the restart
    gw = gateway_factory("--rate", RATE, "--as-of", AS_OF.isoformat())
    url = cluster.url
    migrate(url)
    settings = Settings(gw.host, gw.port, RateLimit.parse(RATE), url, outage_timeout=float(BOUND))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("hk_codes", list(codes))
        runs: list[MarketRun] = []
        thread = threading.Thread(
            target=lambda: runs.append(run_market(instance, Market.HK, codes, resources_from_settings(settings))),
            daemon=True,
        )
        thread.start()

        def second_code_under_way() -> bool:
            state = read_crawl_state(url, codes[1])
            return state is not None and state.cursor is not None

        def first_code_materialized() -> bool:
            return instance.get_latest_materialization_event(asset_key_for(Market.HK)) is not None

        wait_for(lambda: not thread.is_alive() or first_code_materialized(), f"{codes[0]} to be materialized")
        wait_for(lambda: not thread.is_alive() or second_code_under_way(), f"{codes[1]} to commit a page")
        assert thread.is_alive(), f"the run ended before the restart: {runs}"
        cluster.stop("fast")
        time.sleep(5)
        cluster.start()
        thread.join(timeout=120)

        assert runs and runs[0].success, runs
        records = instance.all_logs(runs[0].run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
        materializations = [r.asset_materialization for r in records if r.asset_materialization is not None]
    assert Counter(m.partition for m in materializations) == dict.fromkeys(codes, 1)
    for mat in materializations:
        assert mat.partition is not None
        assert read_summary(mat.description).rows == len(rows_for(mat.partition, AS_OF))
    assert_warehouse_matches_gateway(url, codes, AS_OF)
    assert_crawl_completed(url, codes, AS_OF)
