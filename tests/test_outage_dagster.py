"""Dagster runs through an outage: a run waits out a gateway restart, and one past the bound fails for retries.

Real in-process Dagster runs against a simulated gateway process that is killed and started again on
the same port while the run loads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import yaml

from pipelines.config import RateLimit, Settings
from pipelines.definitions import build_definitions
from pipelines.orchestration.assets import short_interest_asset
from pipelines.orchestration.jobs import full_refresh_job_name, refresh_job, refresh_job_name
from pipelines.orchestration.resources import default_resources, resources_from_settings
from pipelines.orchestration.run_retries import MAX_RETRIES_TAG, RETRY_NUMBER_TAG, RUN_RETRIES, loaded_since
from pipelines.orchestration.runner import MarketRun, run_market
from pipelines.orchestration.schedules import run_request_for_codes
from pipelines.warehouse import create_engine_for, upgrade
from proto_client.security import Market
from tests.support.gateway import GatewayProcess
from tests.support.loader import wait_for
from tests.support.warehouse_check import (
    assert_crawl_completed,
    assert_warehouse_matches_gateway,
    assert_whole_pages_with_cursor,
    read_crawl_state,
)

AS_OF = date(2016, 1, 1)
CODES = ("HK.00700", "HK.00005", "HK.00939")  # 4 pages each
RATE = "2/1"
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("hk_codes", list(CODES))
        yield instance


def start_gateway(factory: Callable[..., GatewayProcess], *extra: str) -> GatewayProcess:
    return factory("--rate", RATE, "--as-of", AS_OF.isoformat(), *extra)


def run_in_background(instance: dg.DagsterInstance, settings: Settings) -> tuple[threading.Thread, list[MarketRun]]:
    runs: list[MarketRun] = []
    thread = threading.Thread(
        target=lambda: runs.append(run_market(instance, Market.HK, CODES, resources_from_settings(settings))),
        daemon=True,
    )
    thread.start()
    return thread, runs


def kill_mid_load(gw: GatewayProcess, url: str, thread: threading.Thread) -> None:
    """Kill the gateway once the second code has committed a page and has more to go."""

    def in_second_code() -> bool:
        state = read_crawl_state(url, CODES[1])
        return state is not None and state.cursor is not None

    wait_for(lambda: in_second_code() or not thread.is_alive(), f"{CODES[1]} to commit a page")
    assert thread.is_alive(), "the run ended before the gateway went away"
    gw.proc.kill()
    gw.proc.wait(timeout=10)


def log_lines(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [entry.user_message for entry in instance.all_logs(run_id) if entry.dagster_event is None]


@pytest.mark.slow(seconds=12)
def test_a_run_waits_out_a_gateway_restart_and_succeeds(
    gateway_factory: Callable[..., GatewayProcess], postgres_url: str, instance: dg.DagsterInstance
) -> None:
    upgrade(postgres_url)
    gw = start_gateway(gateway_factory)
    settings = Settings(gw.host, gw.port, RateLimit.parse(RATE), postgres_url)
    thread, runs = run_in_background(instance, settings)

    kill_mid_load(gw, postgres_url, thread)
    time.sleep(5)
    start_gateway(gateway_factory, "--port", str(gw.port))
    thread.join(timeout=120)

    assert runs, "the run did not finish"
    run = runs[0]
    assert run.success, run.failure
    assert [c.code for c in run.codes if c.ok] == list(CODES)
    assert_warehouse_matches_gateway(postgres_url, CODES, AS_OF)
    assert_crawl_completed(postgres_url, CODES, AS_OF)
    lines = log_lines(instance, run.run_id)
    began = [line for line in lines if "is down since" in line]
    ended = [line for line in lines if "answers again" in line]
    assert len(began) == 1 and len(ended) == 1, lines
    assert f"the OpenD gateway at {gw.host}:{gw.port}" in began[0]


@pytest.mark.slow
def test_a_run_past_the_outage_bound_fails_naming_the_gateway_and_the_codes_left(
    gateway_factory: Callable[..., GatewayProcess], postgres_url: str, instance: dg.DagsterInstance
) -> None:
    upgrade(postgres_url)
    gw = start_gateway(gateway_factory)
    settings = Settings(gw.host, gw.port, RateLimit.parse(RATE), postgres_url, outage_timeout=2.0)
    thread, runs = run_in_background(instance, settings)

    kill_mid_load(gw, postgres_url, thread)
    thread.join(timeout=180)  # a bound on a hang, not a measure: the run fails about 2 s after the kill

    assert runs, "the run did not finish"
    run = runs[0]
    assert not run.success
    assert run.failure.startswith(f"stopped: the OpenD gateway at {gw.host}:{gw.port} has been down for"), run.failure
    loaded = [c.code for c in run.codes if c.ok]
    left = list(CODES[len(loaded) :])
    assert loaded == list(CODES[: len(loaded)]) and left, run.codes
    assert f"{len(left)} code{'s' if len(left) != 1 else ''} not loaded: {', '.join(left)};" in run.failure
    # The code in flight keeps whole pages and the cursor after them for the retry.
    assert_whole_pages_with_cursor(postgres_url, left[0], AS_OF)


@pytest.mark.slow
def test_a_retry_skips_codes_loaded_since_the_first_attempt_began(
    gateway_factory: Callable[..., GatewayProcess], postgres_url: str, instance: dg.DagsterInstance
) -> None:
    upgrade(postgres_url)
    gw = gateway_factory("--rate", "off", "--as-of", AS_OF.isoformat())
    settings = Settings(gw.host, gw.port, RateLimit(1000, 1.0), postgres_url)
    before = datetime.now(UTC) - timedelta(seconds=1)
    assert run_market(instance, Market.HK, CODES[:2], resources_from_settings(settings)).success

    engine = create_engine_for(postgres_url)
    try:
        assert loaded_since(engine, CODES, before) == set(CODES[:2])
        assert loaded_since(engine, CODES, datetime.now(UTC) + timedelta(seconds=1)) == set()
    finally:
        engine.dispose()


def test_refresh_jobs_and_the_instance_retry_failed_runs() -> None:
    defs = build_definitions()
    for market in Market:
        for name in (refresh_job_name(market), full_refresh_job_name(market)):
            tags = defs.resolve_job_def(name).tags
            assert tags[MAX_RETRIES_TAG] == str(RUN_RETRIES) and tags["dagster/retry_strategy"] == "FROM_FAILURE"
    # Backfills and UI materializations are runs of no job of ours: the instance's default covers them.
    settings = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())
    assert settings["run_retries"] == {"enabled": True, "max_retries": RUN_RETRIES}
    with dg.instance_for_test(overrides={"run_retries": settings["run_retries"]}) as instance:
        assert instance.run_retries_enabled and instance.run_retries_max_retries == RUN_RETRIES


def hk_refresh_job() -> dg.JobDefinition:
    """The HK refresh job with the code location's resources, run in process (execute_job needs a module-level
    function to rebuild it from)."""
    defs = dg.Definitions(
        assets=[short_interest_asset(Market.HK)],
        jobs=[refresh_job(Market.HK)],
        resources=default_resources(),
        executor=dg.in_process_executor,
    )
    return defs.resolve_job_def(refresh_job_name(Market.HK))


@pytest.mark.slow(seconds=12)
def test_a_retry_of_a_run_stopped_by_an_outage_loads_only_what_is_left(
    gateway_factory: Callable[..., GatewayProcess],
    postgres_url: str,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    upgrade(postgres_url)
    gw = start_gateway(gateway_factory)
    for name, value in {
        **gw.env(),
        "OPEND_RATE_LIMIT": RATE,
        "SHORTINTEREST_DATABASE_URL": postgres_url,
        "SHORTINTEREST_OUTAGE_TIMEOUT": "2",
    }.items():
        monkeypatch.setenv(name, value)
    job = dg.reconstructable(hk_refresh_job)
    request = run_request_for_codes(list(CODES), Market.HK)
    assert isinstance(request, dg.RunRequest)
    first: list[dg.JobExecutionResult] = []
    thread = threading.Thread(target=lambda: first.append(dg.execute_job(job, instance, tags=request.tags)))
    thread.start()

    kill_mid_load(gw, postgres_url, thread)
    thread.join(timeout=120)
    assert first and not first[0].success
    start_gateway(gateway_factory, "--port", str(gw.port))
    # What the run-retry daemon launches: a re-execution from the failure, tagged with its retry number.
    retry = dg.execute_job(
        job,
        instance,
        tags={**request.tags, RETRY_NUMBER_TAG: "1"},
        reexecution_options=dg.ReexecutionOptions.from_failure(first[0].run_id, instance),
    )

    assert retry.success
    before, after = materialized(first[0]), materialized(retry)
    assert before and after == set(CODES) - before, "the retry re-read a code the first attempt had loaded"
    assert_warehouse_matches_gateway(postgres_url, CODES, AS_OF)
    assert_crawl_completed(postgres_url, CODES, AS_OF)
    skipped = f"{len(before)} code(s) it loaded are skipped"
    assert any(skipped in line for line in log_lines(instance, retry.run_id))


def materialized(result: dg.JobExecutionResult) -> set[str]:
    return {
        str(event.event_specific_data.materialization.partition)  # type: ignore[union-attr]
        for event in result.get_asset_materialization_events()
    }
