"""The movers report asset and the sensor that makes it again after every load of the tables: real runs."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import date

import dagster as dg
import pytest

from pipelines.config import RateLimit, Settings
from pipelines.orchestration.report import REPORT_JOB, report_after_loads_sensor, short_interest_report
from pipelines.orchestration.resources import WarehouseResource, resources_from_settings
from pipelines.orchestration.runner import run_market
from pipelines.orchestration.watchlist_sync import sync_partitions
from pipelines.warehouse import upgrade
from proto_client.security import Market
from tests.support.gateway import GatewayProcess

CODES = {Market.US: ["US.AAPL", "US.TSLA"], Market.HK: ["HK.00700"]}


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


def evaluate(instance: dg.DagsterInstance, cursor: str | None) -> dg.RunRequest | dg.SkipReason:
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    result = report_after_loads_sensor.evaluate_tick(context)
    if result.run_requests:
        assert len(result.run_requests) == 1
        return result.run_requests[0]
    return dg.SkipReason(result.skip_message)


@pytest.mark.slow
def test_report_follows_each_load_and_shows_movers_with_one_chart(
    instance: dg.DagsterInstance, gateway_factory: Callable[..., GatewayProcess], sqlite_url: str
) -> None:
    gateway = gateway_factory("--rate", "off", "--as-of", date(2026, 5, 1).isoformat())
    upgrade(sqlite_url)
    settings = Settings(
        opend_host=gateway.host, opend_port=gateway.port, rate_limit=RateLimit(1000, 1.0), database_url=sqlite_url
    )
    sync_partitions(instance, lambda market: CODES[market])
    resources = resources_from_settings(settings)

    assert isinstance(evaluate(instance, None), dg.SkipReason)  # nothing loaded yet
    assert run_market(instance, Market.US, CODES[Market.US], resources, with_checks=False).success
    request = evaluate(instance, None)
    assert isinstance(request, dg.RunRequest) and request.run_key
    # The sensor's cursor moved past that run: no second report for the same load.
    cursor = dg.build_sensor_context(instance=instance)
    report_after_loads_sensor.evaluate_tick(cursor)
    assert isinstance(evaluate(instance, cursor.cursor), dg.SkipReason)
    # Another load, of the other table, asks for a new report.
    assert run_market(instance, Market.HK, CODES[Market.HK], resources, with_checks=False).success
    assert isinstance(evaluate(instance, cursor.cursor), dg.RunRequest)

    result = dg.materialize(
        [short_interest_report], instance=instance, resources={"warehouse": WarehouseResource(database_url=sqlite_url)}
    )
    metadata = result.asset_materializations_for_node("short_interest_report")[0].metadata
    # Recorded once, as the materialization: no step output carries the report a second time.
    assert not [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    assert metadata["codes"].value == 3
    text = str(metadata["report"].value)
    # code, name (none: these codes were typed, never resolved), report, previous
    movers = re.findall(r"^\| ((?:US|HK)\.\w+) \| [^|]* \| \d{4}-\d\d-\d\d \| \d{4}-\d\d-\d\d \|", text, re.MULTILINE)
    assert sorted(movers) == sorted(c for codes in CODES.values() for c in codes)
    assert metadata["top_mover"].value == movers[0]
    assert len(re.findall(r"!\[[^\]]*\]\(data:image/png;base64,", text)) == 1
    # The report run itself loads no table, so it does not ask for yet another report.
    cursor = dg.build_sensor_context(instance=instance)
    report_after_loads_sensor.evaluate_tick(cursor)
    assert isinstance(evaluate(instance, cursor.cursor), dg.SkipReason)


def test_report_job_targets_only_the_report() -> None:
    from pipelines.definitions import defs

    job = defs.resolve_job_def(REPORT_JOB)
    assert {key.to_user_string() for key in job.asset_layer.executable_asset_keys} == {"short_interest_report"}
