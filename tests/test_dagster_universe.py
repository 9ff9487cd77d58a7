"""The universe asset resolves the watchlist into securities; the sensor follows the table; the short-interest
assets load exactly the resolved partitions; a code removed from a group leaves its partition, keeps its rows."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from pipelines.config import Settings
from pipelines.orchestration.alerts.run_failures import run_failure_alert
from pipelines.orchestration.resources import WatchlistResource, resources_from_settings
from pipelines.orchestration.runner import run_market
from pipelines.orchestration.universe import universe, universe_daily
from pipelines.warehouse import create_engine_for, upgrade
from proto_client.security import Market
from tests.support.crawl import expected_rows, stored_rows
from tests.support.gateway import GatewayProcess
from tests.test_dagster_sensor import partitions, tick

AS_OF = date(2026, 4, 30)


def _materialize(instance: dg.DagsterInstance, settings: Settings, allow_shrink: bool = False) -> dg.ExecuteInJobResult:
    return dg.materialize(
        [universe],
        instance=instance,
        resources=resources_from_settings(settings),
        run_config={"ops": {"universe": {"config": {"allow_shrink": allow_shrink}}}},
        raise_on_error=False,
    )


def test_universe_sensor_and_load_follow_the_groups(
    tmp_path: Path, gateway_factory: Callable[..., GatewayProcess], sqlite_url: str
) -> None:
    groups = tmp_path / "groups.json"
    groups.write_text(json.dumps({"Shorts": ["HK.00700", "US.TSLA", "HK.13579", "US.XAAR"]}))
    gw = gateway_factory("--rate", "off", "--listing-rate", "off", "--as-of", AS_OF.isoformat(),
                         "--market-size", "40", "--groups-file", str(groups))  # fmt: skip
    watchlist = tmp_path / "watchlist.yaml"
    watchlist.write_text("codes: [US.MSFT]\nfutu_groups: [Shorts]\n")
    upgrade(sqlite_url)
    settings = Settings(opend_host=gw.host, opend_port=gw.port, database_url=sqlite_url, watchlist_path=watchlist)
    instance = dg.DagsterInstance.ephemeral()

    assert isinstance(tick(instance, watchlist, sqlite_url), dg.SkipReason)  # not resolved yet: nothing removed
    result = _materialize(instance, settings)
    assert result.success
    metadata = result.asset_materializations_for_node("universe")[0].metadata
    assert metadata["codes"].value == 3 and metadata["delisted"].value == 1
    tick(instance, watchlist, sqlite_url)
    assert partitions(instance) == {"us_codes": ["US.MSFT", "US.TSLA"], "hk_codes": ["HK.00700"]}
    for market in Market:
        run = run_market(instance, market, partitions(instance)[f"{market.prefix.lower()}_codes"],
                         resources_from_settings(settings), with_checks=False)  # fmt: skip
        assert run.success
    engine = create_engine_for(sqlite_url)
    try:
        assert stored_rows(engine, "US.TSLA") == expected_rows("US.TSLA", AS_OF)
        groups.write_text(json.dumps({"Shorts": ["HK.00700", "US.NVDA"]}))
        assert _materialize(instance, settings).success
        tick(instance, watchlist, sqlite_url)
        assert partitions(instance) == {"us_codes": ["US.MSFT", "US.NVDA"], "hk_codes": ["HK.00700"]}
        assert stored_rows(engine, "US.TSLA") == expected_rows("US.TSLA", AS_OF)  # left, rows kept
        with engine.connect() as conn:
            left = conn.execute(sa.text("SELECT in_watchlist FROM securities WHERE code = 'US.TSLA'")).scalar_one()
        assert not left
    finally:
        engine.dispose()

    groups.write_text(json.dumps({"Shorts": []}))
    refused = _materialize(instance, settings)
    assert not refused.success
    # What the run-failure sensor sends once the refused run has no retry left: the refusal, in its words.
    run = instance.get_run_by_id(refused.run_id)
    assert run is not None
    alert = run_failure_alert(instance, run, "http://ui.example")
    assert alert.title.startswith(f"{run.job_name} failed for good"), alert
    assert "the watchlist was not resolved" in alert.details and "would drop 2 of its 3 codes" in alert.details, alert
    assert alert.link == f"http://ui.example/runs/{run.run_id}"
    tick(instance, watchlist, sqlite_url)
    assert partitions(instance)["us_codes"] == ["US.MSFT", "US.NVDA"]  # the last resolution stays
    assert _materialize(instance, settings, allow_shrink=True).success


def test_daily_schedule_skips_a_watchlist_of_codes_only(tmp_path: Path) -> None:
    codes_only = tmp_path / "codes.yaml"
    codes_only.write_text("codes: [US.AAPL]\n")
    sources = tmp_path / "sources.yaml"
    sources.write_text("markets: [HK]\n")
    for path, expected in ((codes_only, dg.SkipReason), (sources, dg.RunRequest)):
        context = dg.build_schedule_context(resources={"watchlist": WatchlistResource(path=str(path))})
        assert isinstance(universe_daily(context), expected)


def test_a_code_without_history_rests_a_month_in_dagster_runs(
    tmp_path: Path, gateway_factory: Callable[..., GatewayProcess], sqlite_url: str
) -> None:
    groups = tmp_path / "groups.json"
    groups.write_text(json.dumps({"Shorts": ["HK.00700", "HK.09988"]}))  # HK.09988: no history before 2019-11
    gw = gateway_factory("--rate", "off", "--listing-rate", "off", "--as-of", "2019-06-03",
                         "--groups-file", str(groups))  # fmt: skip
    watchlist = tmp_path / "watchlist.yaml"
    watchlist.write_text("futu_groups: [Shorts]\n")
    upgrade(sqlite_url)
    settings = Settings(opend_host=gw.host, opend_port=gw.port, database_url=sqlite_url, watchlist_path=watchlist)
    instance = dg.DagsterInstance.ephemeral()
    assert _materialize(instance, settings).success
    tick(instance, watchlist, sqlite_url)
    codes = partitions(instance)["hk_codes"]
    assert codes == ["HK.00700", "HK.09988"]
    first = run_market(instance, Market.HK, codes, resources_from_settings(settings), with_checks=False)
    assert first.success and {c.code for c in first.codes if c.ok} == {"HK.00700", "HK.09988"}
    second = run_market(instance, Market.HK, codes, resources_from_settings(settings), with_checks=False)
    assert second.success and {c.code for c in second.codes if c.ok} == {"HK.00700"}  # HK.09988 not asked
