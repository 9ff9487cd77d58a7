"""The production shape, run for real: the steps of docs/operators/production.md on deploy/dagster.yaml.

Dagster's state lives in a PostgreSQL database of its own, the warehouse in another, migrated by its owner and
loaded through a login in the least-privilege loader role; `dagster-daemon run` and `dagster-webserver` run as two
processes on workspace.yaml against a simulated gateway, and runs are launched
through the webserver's GraphQL API, as the UI launches them. One test covers the whole life of a deployment
because every step needs the previous one's state and each start of the services costs many seconds:

- the sensor adds the watchlist's partitions;
- a backfill of US codes with a gap (one run per contiguous range) and three refresh runs (one per HK code, one for
  a US code) are launched at once: more runs than the gateway tag's limit and the `opend_gateway` pool's, so the
  queue holds one back while two are in progress (the limits are pressed, not only kept), and the pool never has
  more loading steps than its limit;
- the daemon is killed with SIGKILL mid-backfill; the HK schedule is switched on while it is down, and its start
  moved back a week so that a tick is due (the one step the docs do not have: a real tick is days away);
- the daemon is started again: the backfill finishes, the tick launches its run, and the warehouse holds
  exactly the gateway's rows, each written once, no crawl left half-done, no request rejected.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.execution.backfill import BulkActionStatus
from dagster._core.scheduler.instigation import InstigatorState, ScheduleInstigatorData, TickStatus
from sqlalchemy.engine import make_url

from pipelines.orchestration.checks import CHECK_NAMES
from pipelines.orchestration.jobs import GATEWAY_TAG
from pipelines.orchestration.metadata import read_summary
from pipelines.orchestration.report import REPORT_JOB
from pipelines.warehouse.schema import LOADER_ROLE
from proto_client.simulator.demo_data import rows_for
from tests.support.crawl import run_cli
from tests.support.dagster_services import (
    REPO_ROOT,
    Service,
    ServiceGroup,
    Webserver,
    free_port,
    launch_asset_backfill,
    launch_job,
    reading_instance,
    start_schedule,
)
from tests.support.databases import fresh_postgres_database, login_in_role
from tests.support.gateway import GatewayProcess
from tests.support.loader import read_stats, wait_for
from tests.support.warehouse_check import PAGE_SIZE, assert_crawl_completed, assert_warehouse_matches_gateway

AS_OF = date(2026, 6, 30)
# The gateway's limit and the product's: any overrun would be rejected and counted. Low enough that runs in
# flight at once share the budget, and the daemon can be killed while a backfill run is mid-crawl.
RATE = "2/1"
US_CODES = ["US.AAPL", "US.TSLA", "US.SPY", "US.NVDA", "US.MSFT"]
HK_CODES = ["HK.09988", "HK.03690"]
BACKFILL = ["US.AAPL", "US.TSLA", "US.NVDA"]  # US.SPY left out: two runs, one per contiguous range
# Refresh runs launched beside the backfill, one code each: three gateway-tagged runs against a limit of two.
REFRESHED = {"hk_short_interest_refresh": HK_CODES, "us_short_interest_refresh": ["US.MSFT"]}
REFRESHED_CODES = [code for codes in REFRESHED.values() for code in codes]
SCHEDULE = "hk_weekly_refresh"
LOCATION = "shortinterest"  # workspace.yaml's location_name

# Values of deploy/dagster.yaml the assertions hold the services to.
DEPLOY_CONFIG = yaml.safe_load((REPO_ROOT / "deploy" / "dagster.yaml").read_text())
MAX_RUNS = DEPLOY_CONFIG["concurrency"]["runs"]["max_concurrent_runs"]
TAG_LIMIT = {limit["key"]: limit["limit"] for limit in DEPLOY_CONFIG["concurrency"]["runs"]["tag_concurrency_limits"]}
POOL_LIMIT = DEPLOY_CONFIG["concurrency"]["pools"]["default_limit"]

# Bounds that turn a hang into a failure; the whole test takes two to five minutes, with the machine's load.
START_TIMEOUT = 180.0
RUNS_TIMEOUT = 300.0
# The daemon's backfill loop wakes every 30 s, so the test spends minutes, not seconds, on a loaded machine.
pytestmark = [pytest.mark.slow(seconds=120), pytest.mark.timeout(900)]


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _pages(code: str) -> int:
    return -(-len(rows_for(code, AS_OF)) // PAGE_SIZE)


@dataclass
class Deployment:
    """The running production shape and what the test reads it through."""

    services: ServiceGroup
    instance: dg.DagsterInstance
    webserver: Webserver
    warehouse_url: str
    stats_file: Path

    def start_daemon(self) -> Service:
        return self.services.start("daemon", [_bin("dagster-daemon"), "run", "-w", "workspace.yaml"])

    def wait(self, condition: Callable[[], bool], what: str, timeout: float) -> None:
        try:
            wait_for(condition, what, timeout=timeout, interval=0.5)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.services.logs()}") from None


@pytest.fixture
def deployment(
    gateway_factory: Callable[..., GatewayProcess],
    postgres_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Deployment]:
    stats_file = tmp_path / "gateway-stats.json"
    gateway = gateway_factory("--rate", RATE, "--as-of", AS_OF.isoformat(), "--stats-file", str(stats_file))
    watchlist = tmp_path / "watchlist.yaml"
    watchlist.write_text(yaml.safe_dump({"codes": US_CODES + HK_CODES}))
    # The docs: the warehouse's owner makes its schema; the services log in as a member of the loader role.
    migrated = run_cli("migrate", env={"SHORTINTEREST_DATABASE_URL": postgres_url})
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    # The docs: a database for Dagster, separate from the warehouse's (postgres_url).
    with (
        login_in_role(LOADER_ROLE, postgres_url) as loader_url,
        fresh_postgres_database(prefix="si_dagster") as dagster_url,
    ):
        pg = make_url(dagster_url)
        assert pg.host and pg.username and pg.database, f"cannot split {dagster_url} into DAGSTER_PG_* variables"
        home = tmp_path / "dagster_home"
        env = {
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_HOST": pg.host,
            "DAGSTER_PG_PORT": str(pg.port or 5432),
            "DAGSTER_PG_USER": pg.username,
            "DAGSTER_PG_PASSWORD": pg.password or "",
            "DAGSTER_PG_DB": pg.database,
            "SHORTINTEREST_DATABASE_URL": loader_url,
            "SHORTINTEREST_WATCHLIST": str(watchlist),
            "OPEND_RATE_LIMIT": RATE,
            **gateway.env(),
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)  # this process reads the same instance, through the same file
        services = ServiceGroup(tmp_path / "services", {**os.environ, **env})
        try:
            # The docs: install the instance configuration, start the two services.
            home.mkdir()
            shutil.copy(REPO_ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
            port = free_port()
            services.start(
                "webserver", [_bin("dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
            )
            with reading_instance(home) as instance:
                deployment = Deployment(
                    services, instance, Webserver(f"http://127.0.0.1:{port}"), postgres_url, stats_file
                )
                yield deployment
        finally:
            services.stop_all()


def test_production_services_run_backfills_schedules_and_survive_a_daemon_kill(deployment: Deployment) -> None:
    instance = deployment.instance
    daemon = deployment.start_daemon()
    deployment.wait(deployment.webserver.ready, "the webserver to serve", START_TIMEOUT)
    deployment.wait(
        lambda: (
            instance.get_dynamic_partitions("us_codes") == US_CODES
            and instance.get_dynamic_partitions("hk_codes") == HK_CODES
        ),
        "the watchlist_partitions sensor to add every watchlist code",
        START_TIMEOUT,
    )

    # As the UI does: a backfill of chosen codes, and a refresh run per code of REFRESHED, at once.
    backfill_id = launch_asset_backfill(deployment.webserver, "us_short_interest", BACKFILL)
    refresh_runs = {
        launch_job(
            deployment.webserver,
            LOCATION,
            job,
            {"dagster/asset_partition_range_start": code, "dagster/asset_partition_range_end": code},
        )
        for job, codes in REFRESHED.items()
        for code in codes
    }

    # The daemon dies mid-backfill, while a backfill run is crawling its codes.
    def backfill_requests() -> int:
        by_code = read_stats(deployment.stats_file)["by_code"]
        assert isinstance(by_code, dict)
        return sum(int(by_code.get(code, 0)) for code in BACKFILL)

    deployment.wait(lambda: backfill_requests() >= 2, "a backfill run to crawl", RUNS_TIMEOUT)
    daemon.kill_leader()
    served = backfill_requests()
    assert served < sum(_pages(code) for code in BACKFILL), "the backfill was crawled before the daemon was killed"

    # While it is down, the operator switches the HK schedule on; the test moves its start back a week.
    start_schedule(deployment.webserver, LOCATION, SCHEDULE)
    _backdate_schedule(instance, SCHEDULE, days=8)
    deployment.start_daemon()

    deployment.wait(lambda: _backfill_done(instance, backfill_id), "the backfill to complete", RUNS_TIMEOUT)
    deployment.wait(lambda: _schedule_run(instance) is not None, f"{SCHEDULE} to launch its run", RUNS_TIMEOUT)
    deployment.wait(lambda: all(run.is_finished for run in instance.get_runs()), "every run to finish", RUNS_TIMEOUT)

    # The report_after_loads sensor adds report runs once the loads end; they count against the queue's limits.
    runs = [run for run in instance.get_runs() if run.job_name != REPORT_JOB]
    failed = [
        f"{run.run_id} ({run.job_name}): {run.status}" for run in runs if run.status != dg.DagsterRunStatus.SUCCESS
    ]
    assert not failed, "runs did not succeed:\n" + "\n".join(failed) + "\n" + deployment.services.logs()
    backfill = instance.get_backfill(backfill_id)
    assert backfill is not None and backfill.status == BulkActionStatus.COMPLETED_SUCCESS, backfill
    schedule_run = _schedule_run(instance)
    assert schedule_run is not None
    backfill_runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
    assert len(backfill_runs) == 2, "a backfill with a gap makes one run per contiguous range of codes"
    assert {r.run_id for r in runs} == {*(r.run_id for r in backfill_runs), *refresh_runs, schedule_run.run_id}

    _assert_within_run_limits(instance, list(instance.get_runs()))
    _assert_limits_pressed(instance, runs)
    _assert_pool_limit(instance, runs)
    _assert_each_code_materialized_once_per_run(instance, runs)
    _assert_checks_ran(instance, runs)

    loaded = BACKFILL + REFRESHED_CODES
    assert_warehouse_matches_gateway(deployment.warehouse_url, loaded, AS_OF)
    assert_crawl_completed(deployment.warehouse_url, loaded, AS_OF)
    stats = read_stats(deployment.stats_file)
    assert stats["rejected_rate_limit"] == 0, f"the gateway rejected requests: {stats}"
    # Each backfilled or refreshed code was read once, page by page; each HK code then once more incrementally by
    # the schedule (one request: nothing newer). The gap code was never asked for.
    expected_requests = {code: _pages(code) for code in BACKFILL + REFRESHED_CODES} | {
        code: _pages(code) + 1 for code in HK_CODES
    }
    assert stats["by_code"] == expected_requests


def _backdate_schedule(instance: dg.DagsterInstance, name: str, *, days: int) -> None:
    """Move a started schedule's start back, so the daemon's next pass finds a tick due since then.

    Done while the daemon is down: a running daemon keeps the last pass's time in memory and would not look back.
    """
    states = [s for s in instance.all_instigator_state() if s.name == name]
    assert len(states) == 1 and states[0].is_running, f"{name} is not started: {states}"
    state: InstigatorState = states[0]
    data = state.instigator_data
    assert isinstance(data, ScheduleInstigatorData)
    earlier = time.time() - days * 86400
    instance.update_instigator_state(state.with_data(ScheduleInstigatorData(data.cron_schedule, earlier, earlier)))


def _schedule_run(instance: dg.DagsterInstance) -> dg.DagsterRun | None:
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/schedule_name": SCHEDULE}))
    ticks = [
        tick
        for state in instance.all_instigator_state()
        if state.name == SCHEDULE
        for tick in instance.get_ticks(state.instigator_origin_id, state.selector_id)
    ]
    launched = [tick for tick in ticks if tick.status == TickStatus.SUCCESS and tick.run_ids]
    if not runs or not launched:
        return None
    assert len(runs) == 1, f"{SCHEDULE} launched {len(runs)} runs for one due tick"
    return runs[0]


def _backfill_done(instance: dg.DagsterInstance, backfill_id: str) -> bool:
    backfill = instance.get_backfill(backfill_id)
    return backfill is not None and backfill.status != BulkActionStatus.REQUESTED


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end at the same instant as a start does not overlap)."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    open_now = peak = 0
    for _, step in edges:
        open_now += step
        peak = max(peak, open_now)
    return peak


def _assert_within_run_limits(instance: dg.DagsterInstance, runs: list[dg.DagsterRun]) -> None:
    """No more runs in progress at once than the queue allows, overall and with the gateway tag."""
    records = {record.dagster_run.run_id: record for record in instance.get_run_records()}
    now = time.time()
    spans = {
        run.run_id: (start, records[run.run_id].end_time or now)
        for run in runs
        if (start := records[run.run_id].start_time) is not None  # never started: still queued
    }
    peak = _max_overlap(list(spans.values()))
    # Whether the daemon happens to run two of them side by side depends on timing (on a quiet machine each run
    # can end before the next is dequeued), so the test holds the limit, not an overlap.
    assert peak <= MAX_RUNS, spans
    tagged = [spans[run.run_id] for run in runs if GATEWAY_TAG in run.tags and run.run_id in spans]
    assert len(tagged) == len(REFRESHED_CODES) + 1, "the refresh runs and the scheduled run carry the gateway tag"
    assert _max_overlap(tagged) <= TAG_LIMIT[GATEWAY_TAG], tagged


def _assert_limits_pressed(instance: dg.DagsterInstance, runs: list[dg.DagsterRun]) -> None:
    """At some instant two runs were in progress while a third, already queued, was held back.

    Every run here (backfill, refresh, scheduled) crawls in the `opend_gateway` pool and the refresh runs carry
    the gateway tag, both limited to two; which of the two limits holds the third run back depends on whether the
    backfill daemon's 30-second loop submitted its runs before or after the refresh runs were dequeued, so the
    test counts every run, and the limits themselves are held by `_assert_within_run_limits` and
    `_assert_pool_limit`.
    """
    ids = {run.run_id for run in runs}
    records = [record for record in instance.get_run_records() if record.dagster_run.run_id in ids]
    spans = [(r.start_time, r.end_time) for r in records if r.start_time is not None and r.end_time is not None]
    assert len(spans) == len(records), "every run started and ended"
    limit = min(TAG_LIMIT[GATEWAY_TAG], POOL_LIMIT)
    for record in records:
        queued_at, started_at = record.create_timestamp.timestamp(), record.start_time
        assert started_at is not None
        instants = [queued_at, *(start for start, _ in spans if queued_at <= start < started_at)]
        if any(sum(start <= t < end for start, end in spans) >= limit for t in instants):
            return
    raise AssertionError(f"no run waited in the queue while {limit} were in progress: {sorted(spans)}")


def _events(instance: dg.DagsterInstance, run: dg.DagsterRun, *types: dg.DagsterEventType) -> list[dg.EventLogEntry]:
    return [entry for entry in instance.all_logs(run.run_id, of_type=set(types)) if entry.dagster_event]


STEP_EVENTS = (dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE)


def _assert_pool_limit(instance: dg.DagsterInstance, runs: list[dg.DagsterRun]) -> None:
    """From the event log: never more loading steps running at once than the `opend_gateway` pool allows."""
    steps: list[tuple[float, float]] = []
    for run in runs:
        started: dict[str, float] = {}
        for entry in _events(
            instance,
            run,
            dg.DagsterEventType.STEP_START,
            dg.DagsterEventType.STEP_SUCCESS,
            dg.DagsterEventType.STEP_FAILURE,
        ):
            event = entry.dagster_event
            assert event is not None and event.step_key is not None
            if event.event_type is dg.DagsterEventType.STEP_START:
                started[event.step_key] = entry.timestamp
            else:
                steps.append((started.pop(event.step_key), entry.timestamp))
        assert not started, f"run {run.run_id}: steps {sorted(started)} started and never ended"
    assert len(steps) == len(runs), "every run has one loading step, in the opend_gateway pool"
    assert _max_overlap(steps) <= POOL_LIMIT, steps


def _assert_each_code_materialized_once_per_run(instance: dg.DagsterInstance, runs: list[dg.DagsterRun]) -> None:
    """Each run materialized each of its codes once; across runs, every row was inserted once and none rewritten."""
    by_group: dict[str, list[str]] = {"backfill": [], "refresh": [], "schedule": []}
    inserted: dict[str, int] = {}
    for run in runs:
        group = (
            "backfill"
            if "dagster/backfill" in run.tags
            else "schedule"
            if "dagster/schedule_name" in run.tags
            else "refresh"
        )
        for entry in _events(instance, run, dg.DagsterEventType.ASSET_MATERIALIZATION):
            materialization = entry.asset_materialization
            assert materialization is not None and materialization.partition is not None
            code = materialization.partition
            by_group[group].append(code)
            summary = read_summary(materialization.description)
            assert summary.updated == 0, f"{code} in run {run.run_id}: rows rewritten: {summary}"
            inserted[code] = inserted.get(code, 0) + summary.inserted
    assert sorted(by_group["backfill"]) == sorted(BACKFILL)
    assert sorted(by_group["refresh"]) == sorted(REFRESHED_CODES)
    assert sorted(by_group["schedule"]) == sorted(HK_CODES)
    assert inserted == {code: len(rows_for(code, AS_OF)) for code in BACKFILL + REFRESHED_CODES}


def _launched_by(run: dg.DagsterRun) -> str:
    if "dagster/backfill" in run.tags:
        return "backfill"
    return "schedule" if "dagster/schedule_name" in run.tags else "refresh"


def _assert_checks_ran(instance: dg.DagsterInstance, runs: list[dg.DagsterRun]) -> None:
    for run in runs:
        evaluated = [
            entry.dagster_event.event_specific_data.check_name  # type: ignore[union-attr]
            for entry in _events(instance, run, dg.DagsterEventType.ASSET_CHECK_EVALUATION)
        ]
        assert sorted(evaluated) == sorted(CHECK_NAMES), f"run {run.run_id} ({run.job_name}) evaluated {evaluated}"
