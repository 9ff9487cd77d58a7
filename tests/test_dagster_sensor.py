"""The watchlist sensor keeps `us_codes` / `hk_codes` equal to the watchlist file."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from pipelines.crawl.watchlist import WatchlistError
from pipelines.orchestration.resources import WarehouseResource, WatchlistResource
from pipelines.orchestration.sensors import watchlist_partitions_sensor
from pipelines.orchestration.watchlist_sync import plan_sync, sync_partitions
from proto_client.security import Market


def write_watchlist(path: Path, *codes: str) -> None:
    path.write_text("codes:\n" + "".join(f"  - {code}\n" for code in codes), encoding="utf-8")


def tick(
    instance: dg.DagsterInstance, watchlist: Path, database_url: str = "sqlite://"
) -> dg.SensorResult | dg.SkipReason:
    """Evaluate the sensor once and apply its partition requests, as the daemon does."""
    resources = {
        "watchlist": WatchlistResource(path=str(watchlist)),
        "warehouse": WarehouseResource(database_url=database_url),
    }
    context = dg.build_sensor_context(instance=instance, resources=resources)
    result = watchlist_partitions_sensor(context)
    if isinstance(result, dg.SensorResult):
        for request in result.dynamic_partitions_requests or []:
            if isinstance(request, dg.AddDynamicPartitionsRequest):
                instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
            else:
                for key in request.partition_keys:
                    instance.delete_dynamic_partition(request.partitions_def_name, key)
    return result


def partitions(instance: dg.DagsterInstance) -> dict[str, list[str]]:
    return {name: list(instance.get_dynamic_partitions(name)) for name in ("us_codes", "hk_codes")}


def test_sensor_adds_new_and_removes_dropped_codes(tmp_path: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    watchlist = tmp_path / "watchlist.yaml"
    write_watchlist(watchlist, "HK.00700", "US.AAPL", "us.msft", "HK.700", "HK.02800")

    first = tick(instance, watchlist)

    assert isinstance(first, dg.SensorResult)
    # Normalized codes, file order, duplicates ("HK.700" is HK.00700) once.
    assert partitions(instance) == {"us_codes": ["US.AAPL", "US.MSFT"], "hk_codes": ["HK.00700", "HK.02800"]}

    assert isinstance(tick(instance, watchlist), dg.SkipReason)  # nothing to do the second time

    write_watchlist(watchlist, "HK.02800", "US.MSFT", "US.TSLA", "HK.09988")
    changed = tick(instance, watchlist)

    assert isinstance(changed, dg.SensorResult)
    kinds = {
        (type(r).__name__, r.partitions_def_name, tuple(r.partition_keys)) for r in changed.dynamic_partitions_requests
    }
    assert kinds == {
        ("AddDynamicPartitionsRequest", "us_codes", ("US.TSLA",)),
        ("DeleteDynamicPartitionsRequest", "us_codes", ("US.AAPL",)),
        ("AddDynamicPartitionsRequest", "hk_codes", ("HK.09988",)),
        ("DeleteDynamicPartitionsRequest", "hk_codes", ("HK.00700",)),
    }
    assert partitions(instance) == {"us_codes": ["US.MSFT", "US.TSLA"], "hk_codes": ["HK.02800", "HK.09988"]}


def test_invalid_watchlist_fails_the_tick_naming_every_bad_entry_and_keeps_partitions(tmp_path: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    watchlist = tmp_path / "watchlist.yaml"
    write_watchlist(watchlist, "HK.00700", "US.AAPL")
    tick(instance, watchlist)

    write_watchlist(watchlist, "HK.00700", "SH.600519", "AAPL", "US.MSFT")
    with pytest.raises(WatchlistError) as raised:
        tick(instance, watchlist)

    message = str(raised.value)
    assert "SH.600519" in message and "'AAPL'" in message and str(watchlist) in message
    assert "US.MSFT" not in message
    # A broken file must not read as "the watchlist is now empty": nothing is removed or added.
    assert partitions(instance) == {"us_codes": ["US.AAPL"], "hk_codes": ["HK.00700"]}


def test_malformed_sources_fail_the_tick_naming_the_entry_and_keep_partitions(tmp_path: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    watchlist = tmp_path / "watchlist.yaml"
    write_watchlist(watchlist, "HK.00700")
    tick(instance, watchlist)
    watchlist.write_text("codes: [HK.00700]\nmarkets: [JP]\nplates: [HSI Constituent]\n")
    with pytest.raises(WatchlistError) as raised:
        tick(instance, watchlist)
    assert "markets entry 1 'JP'" in str(raised.value) and "plates entry 1 'HSI Constituent'" in str(raised.value)
    assert partitions(instance) == {"us_codes": [], "hk_codes": ["HK.00700"]}


def test_missing_watchlist_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(WatchlistError, match=r"nope\.yaml"):
        tick(dg.DagsterInstance.ephemeral(), missing)


def test_sync_partitions_applies_directly() -> None:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("us_codes", ["US.OLD"])
    wanted = {Market.US: ["US.AAPL"], Market.HK: ["HK.00700", "HK.00005"]}

    plan = sync_partitions(instance, lambda market: wanted[market])

    assert plan.changed
    assert "removed US.OLD" in plan.summary()
    assert partitions(instance) == {"us_codes": ["US.AAPL"], "hk_codes": ["HK.00700", "HK.00005"]}
    assert not sync_partitions(instance, lambda market: wanted[market]).changed


def test_summary_of_a_large_change_gives_counts_and_the_first_codes() -> None:
    us = [f"US.A{i:04d}" for i in range(10_000)]
    current = {"us_codes": ["US.OLD1", "US.OLD2"], "hk_codes": []}

    summary = plan_sync(lambda market: us if market is Market.US else [], current.__getitem__).summary()

    assert summary == (
        "us_codes: added 10000 codes: US.A0000, US.A0001, US.A0002, US.A0003, US.A0004 and 9995 more; "
        "us_codes: removed US.OLD1, US.OLD2"
    )
