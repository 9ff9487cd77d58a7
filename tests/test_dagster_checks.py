"""Asset checks run through Dagster against a real warehouse: pass on good data, fail on planted bad data."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from pipelines.orchestration.assets import short_interest_asset
from pipelines.orchestration.jobs import asset_key_for
from pipelines.orchestration.partitions import partition_name
from pipelines.orchestration.quality import expected_report, market_today
from pipelines.orchestration.resources import GatewayResource, WarehouseResource
from pipelines.warehouse import table_for, upsert_batch
from proto_client.security import Market
from proto_client.simulator.demo_data import rows_for

CODES = {Market.HK: ["HK.00700", "HK.02800"], Market.US: ["US.AAPL", "US.MSFT"]}


def seed(engine: sa.Engine, market: Market) -> None:
    """The demo history of the market's two codes, up to today: data every check passes on."""
    for code in CODES[market]:
        upsert_batch(engine, rows_for(code, market_today(market)))


def run_checks(engine: sa.Engine, market: Market, *, partitions: list[str] | None = None) -> dict[str, Any]:
    """Run the market's four checks in process, alone (no load), as "execute checks" in the UI does."""
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(partition_name(market), CODES[market] if partitions is None else partitions)
    url = engine.url.render_as_string(hide_password=False)
    result = dg.materialize(
        [short_interest_asset(market)],
        instance=instance,
        selection=dg.AssetSelection.checks_for_assets(asset_key_for(market)),
        # The gateway is not touched when only checks are selected.
        resources={"warehouse": WarehouseResource(database_url=url), "gateway": GatewayResource(port=1)},
    )
    assert result.get_asset_materialization_events() == []
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == {"cadence_gaps", "values_in_range", "trade_date_matches_timestamp", "freshness"}
    return evaluations


def meta(evaluation: Any, key: str) -> Any:
    return evaluation.metadata[key].value


def execute(engine: sa.Engine, statement: sa.Executable) -> None:
    with engine.begin() as conn:
        conn.execute(statement)


@pytest.mark.parametrize("market", list(Market), ids=lambda m: m.prefix)
def test_every_check_passes_on_good_data(warehouse_engine: sa.Engine, market: Market) -> None:
    seed(warehouse_engine, market)
    evaluations = run_checks(warehouse_engine, market)
    failed = {name: e.description for name, e in evaluations.items() if not e.passed}
    assert failed == {}
    assert meta(evaluations["freshness"], "stale_count") == 0


@pytest.mark.parametrize("market", list(Market), ids=lambda m: m.prefix)
def test_cadence_gap_names_code_and_dates(warehouse_engine: sa.Engine, market: Market) -> None:
    seed(warehouse_engine, market)
    table = table_for(market)
    code = CODES[market][1]
    newest = sorted(r.trade_date for r in rows_for(code, market_today(market)))
    # Remove three consecutive publications a few months back: a hole the cadence cannot explain.
    hole = newest[-12:-9]
    execute(warehouse_engine, sa.delete(table).where(table.c.code == code, table.c.trade_date.in_(hole)))

    evaluation = run_checks(warehouse_engine, market)["cadence_gaps"]

    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert meta(evaluation, "offending_codes") == [code]
    assert meta(evaluation, "gap_count") == 1
    table_md = meta(evaluation, "gaps")
    assert str(newest[-13]) in table_md and str(newest[-9]) in table_md


def test_hk_ratio_above_100_is_an_error(warehouse_engine: sa.Engine) -> None:
    seed(warehouse_engine, Market.HK)
    table = table_for(Market.HK)
    day = rows_for("HK.00700", market_today(Market.HK))[3].trade_date
    execute(
        warehouse_engine,
        sa.update(table)
        .where(table.c.code == "HK.00700", table.c.trade_date == day)
        .values(aggregated_short_ratio=130.5),
    )

    evaluation = run_checks(warehouse_engine, Market.HK)["values_in_range"]

    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert meta(evaluation, "offending_codes") == ["HK.00700"]
    assert meta(evaluation, "error_count") == 1
    assert "aggregated_short_ratio" in meta(evaluation, "violations") and str(day) in meta(evaluation, "violations")


def test_us_percent_above_100_only_warns_but_negative_values_are_errors(warehouse_engine: sa.Engine) -> None:
    seed(warehouse_engine, Market.US)
    table = table_for(Market.US)
    rows = rows_for("US.AAPL", market_today(Market.US))
    execute(
        warehouse_engine,
        sa.update(table)
        .where(table.c.code == "US.AAPL", table.c.trade_date == rows[0].trade_date)
        .values(short_percent=112.0),
    )

    warning = run_checks(warehouse_engine, Market.US)["values_in_range"]
    assert not warning.passed
    assert warning.severity == dg.AssetCheckSeverity.WARN
    assert meta(warning, "warning_count") == 1 and meta(warning, "error_count") == 0

    execute(
        warehouse_engine,
        sa.update(table)
        .where(table.c.code == "US.MSFT", table.c.trade_date == rows[5].trade_date)
        .values(days_to_cover=-2.5, close_price=-1.0),
    )
    error = run_checks(warehouse_engine, Market.US)["values_in_range"]
    assert not error.passed
    assert error.severity == dg.AssetCheckSeverity.ERROR
    assert meta(error, "offending_codes") == ["US.AAPL", "US.MSFT"]
    assert meta(error, "error_count") == 2
    assert "days_to_cover" in meta(error, "violations") and "close_price" in meta(error, "violations")


@pytest.mark.parametrize("market", list(Market), ids=lambda m: m.prefix)
def test_trade_date_read_through_utc_is_caught(warehouse_engine: sa.Engine, market: Market) -> None:
    seed(warehouse_engine, market)
    table = table_for(market)
    code = CODES[market][0]
    row = rows_for(code, market_today(market))[2]
    # The classic bug: the date taken in UTC instead of the market's zone lands on the day before in HK
    # (midnight there is 16:00 UTC the day before); for US, shift by a day to the same effect.
    wrong = row.trade_date - timedelta(days=1)
    execute(
        warehouse_engine,
        sa.update(table).where(table.c.code == code, table.c.trade_date == row.trade_date).values(trade_date=wrong),
    )

    evaluation = run_checks(warehouse_engine, market)["trade_date_matches_timestamp"]

    assert not evaluation.passed
    assert meta(evaluation, "mismatch_count") == 1
    assert meta(evaluation, "offending_codes") == [code]
    details = meta(evaluation, "mismatches")
    assert str(wrong) in details and str(row.trade_date) in details and str(row.timestamp) in details


@pytest.mark.parametrize("market", list(Market), ids=lambda m: m.prefix)
def test_stale_and_never_loaded_codes_fail_freshness(warehouse_engine: sa.Engine, market: Market) -> None:
    seed(warehouse_engine, market)
    table = table_for(market)
    code = CODES[market][0]
    cutoff = market_today(market) - timedelta(days=40)
    execute(warehouse_engine, sa.delete(table).where(table.c.code == code, table.c.trade_date > cutoff))
    never_loaded = "HK.00939" if market is Market.HK else "US.QQQ"

    evaluation = run_checks(warehouse_engine, market, partitions=[*CODES[market], never_loaded])["freshness"]

    assert not evaluation.passed
    assert meta(evaluation, "offending_codes") == sorted([code, never_loaded])
    assert meta(evaluation, "stale_count") == 2
    details = meta(evaluation, "stale")
    assert "never loaded" in details
    newest_kept = max(r.trade_date for r in rows_for(code, market_today(market)) if r.trade_date <= cutoff)
    assert str(newest_kept) in details


@pytest.mark.parametrize("market", list(Market), ids=lambda m: m.prefix)
def test_a_code_dropped_from_the_watchlist_no_longer_counts_for_freshness(
    warehouse_engine: sa.Engine, market: Market
) -> None:
    seed(warehouse_engine, market)
    dropped = "HK.00939" if market is Market.HK else "US.QQQ"  # its rows stay; no refresh reads it any more
    old = market_today(market) - timedelta(days=120)
    upsert_batch(warehouse_engine, [r for r in rows_for(dropped, market_today(market)) if r.trade_date <= old])

    assert not run_checks(warehouse_engine, market, partitions=[*CODES[market], dropped])["freshness"].passed
    evaluation = run_checks(warehouse_engine, market)["freshness"]
    assert evaluation.passed, evaluation.description


@pytest.mark.parametrize("market", list(Market), ids=lambda m: m.prefix)
def test_freshness_waits_a_week_after_each_publication(warehouse_engine: sa.Engine, market: Market) -> None:
    today = market_today(market)
    expected = expected_report(market, today)
    assert expected is not None and expected.published <= today - timedelta(days=7)
    # A report published within the last week may still be waiting for its weekly refresh.
    for code in CODES[market]:
        upsert_batch(warehouse_engine, [r for r in rows_for(code, today) if r.trade_date <= expected.report])
    evaluation = run_checks(warehouse_engine, market)["freshness"]
    assert evaluation.passed, evaluation.description
    assert meta(evaluation, "expected_trade_date") == str(expected.report)

    table = table_for(market)
    execute(warehouse_engine, sa.delete(table).where(table.c.trade_date == expected.report))
    evaluation = run_checks(warehouse_engine, market)["freshness"]
    assert not evaluation.passed
    assert f"missing the {expected.report} report (published {expected.published})" in (evaluation.description or "")


def test_freshness_is_measured_in_the_market_time_zone() -> None:
    # 2026-05-01 20:00 in New York is already 2026-05-02 in Hong Kong.
    from datetime import datetime
    from zoneinfo import ZoneInfo

    now = datetime(2026, 5, 1, 20, 0, tzinfo=ZoneInfo("America/New_York"))
    assert market_today(Market.US, now) == date(2026, 5, 1)
    assert market_today(Market.HK, now) == date(2026, 5, 2)
