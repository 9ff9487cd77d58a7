"""Real Dagster runs, in process, against the simulated gateway process and a real warehouse."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import astuple
from datetime import date
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from pipelines.config import RateLimit, Settings
from pipelines.orchestration.assets import short_interest_asset
from pipelines.orchestration.jobs import refresh_job, refresh_job_name
from pipelines.orchestration.metadata import LoadSummary, SummaryFormatError, read_summary
from pipelines.orchestration.partitions import partition_name
from pipelines.orchestration.resources import (
    GatewayResource,
    RateLimitConfig,
    WarehouseResource,
    resources_from_settings,
)
from pipelines.orchestration.schedules import run_request_for_codes, weekly_refresh_schedule
from pipelines.warehouse import create_engine_for, table_for, upgrade
from proto_client.security import Market
from proto_client.simulator.demo_data import rows_for
from tests.support.gateway import GatewayProcess

# Every test here waits seconds on loads, gateways, outages, services or Dagster runs: outside the inner loop.
pytestmark = pytest.mark.slow

# A fixed cut-off makes the expected rows exact; freshness is not under test here.
AS_OF = date(2026, 5, 1)
# The gateway's limit is off in these tests; the shared limiter stays in the path, set high.
FAST = RateLimit(1000, 1.0)
# Two requests per half second (0.65 s with the limiter's margin): every third page waits for the limiter.
TIGHT = RateLimit(2, 0.5)


@pytest.fixture
def gateway(gateway_factory: Callable[..., GatewayProcess]) -> GatewayProcess:
    return gateway_factory("--rate", "off", "--as-of", AS_OF.isoformat())


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


def resources(gateway: GatewayProcess, database_url: str, rate: RateLimit = FAST) -> dict[str, Any]:
    settings = Settings(opend_host=gateway.host, opend_port=gateway.port, rate_limit=rate, database_url=database_url)
    return resources_from_settings(settings)


def stored_rows(database_url: str, market: Market, code: str) -> list[tuple[Any, ...]]:
    """The code's rows as the warehouse holds them, newest first, in the shape of the gateway's records."""
    table = table_for(market)
    value_columns = [c for c in table.columns if c.name not in ("first_loaded_at", "updated_at", "published_on")]
    engine = create_engine_for(database_url)
    try:
        with engine.connect() as conn:
            query = sa.select(*value_columns).where(table.c.code == code).order_by(table.c.trade_date.desc())
            return [tuple(row) for row in conn.execute(query)]
    finally:
        engine.dispose()


def expected_rows(code: str) -> list[tuple[Any, ...]]:
    # Records are (code, trade_date, timestamp, values...) in the table's column order.
    return [astuple(row) for row in rows_for(code, AS_OF)]


def materializations(result: dg.ExecuteInProcessResult) -> dict[str, LoadSummary]:
    """Partition -> the figures of each materialization the run recorded."""
    out: dict[str, LoadSummary] = {}
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization  # type: ignore[union-attr]
        assert mat.partition is not None
        assert mat.partition not in out, f"two materializations of {mat.partition}"
        # The figures are the materialization's one line; the table's schema stays on the asset definition.
        assert not mat.metadata, f"{mat.partition}: per-code metadata entries {sorted(mat.metadata)}"
        out[mat.partition] = read_summary(mat.description)
    return out


def step_failure_text(result: dg.ExecuteInProcessResult) -> str:
    """The step failure as the UI shows it: the error and the errors it was raised from."""
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    error = failure.event_specific_data.error  # type: ignore[union-attr]
    parts = []
    while error is not None:
        parts.append(error.message)
        error = error.cause
    return "\n".join(parts)


def range_tags(first: str, last: str) -> dict[str, str]:
    request = run_request_for_codes([first, last], Market.HK)
    assert isinstance(request, dg.RunRequest)
    return dict(request.tags)


@pytest.mark.parametrize(("market", "code"), [(Market.HK, "HK.00700"), (Market.US, "US.AAPL")])
def test_one_partition_loads_exactly_the_gateways_rows(
    market: Market, code: str, gateway: GatewayProcess, postgres_url: str, instance: dg.DagsterInstance
) -> None:
    upgrade(postgres_url)
    instance.add_dynamic_partitions(partition_name(market), [code])

    result = dg.materialize(
        [short_interest_asset(market)],
        instance=instance,
        partition_key=code,
        resources=resources(gateway, postgres_url, TIGHT),
    )

    assert result.success
    expected = expected_rows(code)
    assert stored_rows(postgres_url, market, code) == expected
    meta = materializations(result)[code]
    pages = -(-len(expected) // 50)
    assert (meta.inserted, meta.updated, meta.unchanged) == (len(expected), 0, 0)
    assert meta.requests == pages
    assert meta.mode == "full"  # first load of a code walks its whole history
    assert meta.newest_trade_date == str(expected[0][1])
    assert meta.rows == len(expected)
    assert meta.gateway == f"{gateway.host}:{gateway.port}"
    # At least three waits of up to 0.65 s each, less the time the pages in between took.
    assert pages > 3 * TIGHT.requests
    assert meta.waited_seconds >= 0.5


def test_second_run_is_incremental_and_full_config_rereads_everything(
    gateway: GatewayProcess, postgres_url: str, instance: dg.DagsterInstance
) -> None:
    upgrade(postgres_url)
    code = "US.MSFT"
    instance.add_dynamic_partitions("us_codes", [code])
    asset = short_interest_asset(Market.US)
    res = resources(gateway, postgres_url)
    dg.materialize([asset], instance=instance, partition_key=code, resources=res)

    again = materializations(dg.materialize([asset], instance=instance, partition_key=code, resources=res))[code]
    full = materializations(
        dg.materialize(
            [asset],
            instance=instance,
            partition_key=code,
            resources=res,
            run_config={"ops": {"us_short_interest": {"config": {"full": True}}}},
        )
    )[code]

    total = len(expected_rows(code))
    assert (again.mode, again.requests, again.inserted, again.updated) == ("incremental", 1, 0, 0)
    assert again.unchanged == 50  # the newest page, re-read for revisions
    assert (full.mode, full.requests, full.unchanged, full.inserted) == (
        "full",
        -(-total // 50),
        total,
        0,
    )
    assert stored_rows(postgres_url, Market.US, code) == expected_rows(code)


def test_scheduled_run_loads_every_code_in_one_run_and_runs_the_checks(
    gateway: GatewayProcess, sqlite_url: str, instance: dg.DagsterInstance
) -> None:
    upgrade(sqlite_url)
    codes = ["HK.00700", "HK.09988", "HK.00005", "HK.02800"]
    instance.add_dynamic_partitions("hk_codes", codes)
    request = weekly_refresh_schedule(Market.HK, "0 9 * * 6")(dg.build_schedule_context(instance=instance))
    assert isinstance(request, dg.RunRequest)
    defs = dg.Definitions(
        assets=[short_interest_asset(Market.HK)],
        jobs=[refresh_job(Market.HK)],
        resources=resources(gateway, sqlite_url),
    )

    result = defs.resolve_job_def(refresh_job_name(Market.HK)).execute_in_process(instance=instance, tags=request.tags)

    assert result.success
    meta = materializations(result)
    assert sorted(meta) == sorted(codes)
    for code in codes:
        assert stored_rows(sqlite_url, Market.HK, code) == expected_rows(code)
        assert meta[code].inserted == len(expected_rows(code))
        assert meta[code].newest_trade_date == str(rows_for(code, AS_OF)[0].trade_date)
    assert sorted(instance.get_materialized_partitions(dg.AssetKey("hk_short_interest"))) == sorted(codes)
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    # The cut-off is months old, so only freshness fails: the data itself is clean.
    assert checks == {
        "cadence_gaps": True,
        "values_in_range": True,
        "trade_date_matches_timestamp": True,
        "freshness": False,
    }


def test_failed_codes_fail_the_run_after_the_others_are_loaded(
    gateway: GatewayProcess, postgres_url: str, instance: dg.DagsterInstance
) -> None:
    upgrade(postgres_url)
    # HK.01810 is not in the demo universe; US.AAPL is in the wrong market's partition set.
    codes = ["HK.00700", "HK.01810", "US.AAPL", "HK.02800"]
    instance.add_dynamic_partitions("hk_codes", codes)

    result = dg.materialize(
        [short_interest_asset(Market.HK)],
        instance=instance,
        resources=resources(gateway, postgres_url),
        tags=range_tags(codes[0], codes[-1]),
        raise_on_error=False,
    )

    assert not result.success
    assert sorted(materializations(result)) == ["HK.00700", "HK.02800"]
    for code in ("HK.00700", "HK.02800"):
        assert stored_rows(postgres_url, Market.HK, code) == expected_rows(code)
    message = step_failure_text(result)
    assert "2 of 4 code(s) failed: HK.01810, US.AAPL" in message
    assert "US.AAPL is a US code in the HK partition set" in message
    assert "HK.01810" in message and "unknown security" in message
    # The checks still ran over what was loaded, before the run failed.
    assert len(result.get_asset_check_evaluations()) == 4


def partition_statuses(instance: dg.DagsterInstance, market: Market, codes: list[str]) -> dict[str, str]:
    """Each code's partition status as the UI's partition bar shows it (materialized, failed, in progress)."""
    key = dg.AssetKey(f"{market.prefix.lower()}_short_interest")
    partitions = dg.DynamicPartitionsDefinition(name=partition_name(market))
    statuses = instance.get_status_by_partition(key, codes, partitions) or {}
    return {code: status.value if status else "missing" for code, status in statuses.items()}


def planned_partitions(instance: dg.DagsterInstance, run_id: str) -> list[str | None]:
    """The partitions of the run's "materialization planned" events (None: the whole range in one event)."""
    records = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    return sorted(
        (r.dagster_event.event_specific_data.partition for r in records),  # type: ignore[union-attr]
        key=lambda p: p or "",
    )


def test_with_one_planned_event_per_range_failed_codes_still_show_failed(
    gateway: GatewayProcess,
    postgres_url: str,
    instance: dg.DagsterInstance,
    unused_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """deploy/shortinterest.env's DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS: no planned event per code,
    except those the asset records for codes that failed or were never reached, which the UI then shows failed."""
    monkeypatch.setenv("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "true")
    upgrade(postgres_url)
    codes = ["HK.00700", "HK.01810", "US.AAPL", "HK.02800"]
    instance.add_dynamic_partitions("hk_codes", codes)
    asset = short_interest_asset(Market.HK)

    result = dg.materialize(
        [asset],
        instance=instance,
        resources=resources(gateway, postgres_url),
        tags=range_tags(codes[0], codes[-1]),
        raise_on_error=False,
    )

    assert not result.success
    assert planned_partitions(instance, result.run_id) == [None, "HK.01810", "US.AAPL"]
    assert partition_statuses(instance, Market.HK, codes) == {
        "HK.00700": "MATERIALIZED",
        "HK.01810": "FAILED",
        "US.AAPL": "FAILED",
        "HK.02800": "MATERIALIZED",
    }

    # A run that an error stops before any code: every code it was to load shows failed, loaded before or not.
    stopped = Settings(opend_port=unused_port, rate_limit=FAST, database_url=postgres_url)
    result = dg.materialize(
        [asset],
        instance=instance,
        resources=resources_from_settings(stopped),
        tags=range_tags("HK.00700", "HK.02800"),
        raise_on_error=False,
    )
    assert not result.success
    assert planned_partitions(instance, result.run_id) == [None, *sorted(codes)]
    assert set(partition_statuses(instance, Market.HK, codes).values()) == {"FAILED"}


def test_unreachable_gateway_fails_naming_the_address(
    postgres_url: str, instance: dg.DagsterInstance, unused_port: int
) -> None:
    upgrade(postgres_url)
    instance.add_dynamic_partitions("us_codes", ["US.AAPL"])
    settings = Settings(opend_port=unused_port, rate_limit=FAST, database_url=postgres_url)

    result = dg.materialize(
        [short_interest_asset(Market.US)],
        instance=instance,
        partition_key="US.AAPL",
        resources=resources_from_settings(settings),
        raise_on_error=False,
    )

    assert not result.success
    message = step_failure_text(result)
    assert f"no US code was loaded: cannot reach the OpenD gateway at 127.0.0.1:{unused_port}" in message
    assert materializations(result) == {}


def test_malformed_setting_fails_naming_the_variable(postgres_url: str, instance: dg.DagsterInstance) -> None:
    instance.add_dynamic_partitions("hk_codes", ["HK.00700"])
    res = {
        "gateway": GatewayResource(rate_limit=RateLimitConfig(requests=0, seconds=30)),
        "warehouse": WarehouseResource(database_url=postgres_url),
    }

    result = dg.materialize(
        [short_interest_asset(Market.HK)],
        instance=instance,
        partition_key="HK.00700",
        resources=res,
        raise_on_error=False,
    )

    assert not result.success
    assert "no HK code was loaded: OPEND_RATE_LIMIT: rate limit 0/30: both numbers must be positive" in (
        step_failure_text(result)
    )


@pytest.mark.parametrize(
    "summary",
    [
        LoadSummary(12, 1, 49, 327, "2026-04-15", 2, 0.4, "incremental", "10.0.0.5:11111"),
        LoadSummary(327, 0, 0, None, "none", 7, 12.5, "full", ""),
        LoadSummary(0, 0, 50, 5000, "2026-04-15", 1, 0.0, "resumed", "[::1]:11111"),
    ],
)
def test_a_load_summary_reads_back_as_written(summary: LoadSummary) -> None:
    line = summary.line()
    assert read_summary(line) == summary
    assert len(line) <= 90  # Dagster stores it three times per code per week
    with pytest.raises(SummaryFormatError):
        read_summary(line.replace(" rows to ", " rows until "))
