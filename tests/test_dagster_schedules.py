"""Weekly schedules: market time zones, and one run request over all of the market's current codes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from pipelines.orchestration.schedules import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    weekly_schedules,
)

SCHEDULES = {s.name: s for s in weekly_schedules()}


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """A persistent (temporary-directory) instance: schedule contexts need an instance reference."""
    with dg.instance_for_test() as instance:
        yield instance


def evaluate(name: str, instance: dg.DagsterInstance) -> dg.RunRequest | dg.SkipReason:
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=datetime(2026, 5, 2, 9, 0, tzinfo=ZoneInfo("Asia/Hong_Kong"))
    )
    result = SCHEDULES[name](context)
    assert isinstance(result, (dg.RunRequest, dg.SkipReason))
    return result


def test_schedules_follow_each_markets_publication_in_its_time_zone() -> None:
    hk, us = SCHEDULES["hk_weekly_refresh"], SCHEDULES["us_weekly_refresh"]
    assert (hk.cron_schedule, hk.execution_timezone, hk.job_name) == (
        "0 9 * * 6",
        "Asia/Hong_Kong",
        "hk_short_interest_refresh",
    )
    assert (us.cron_schedule, us.execution_timezone, us.job_name) == (
        "0 20 * * 3",
        "America/New_York",
        "us_short_interest_refresh",
    )
    assert {s.default_status for s in SCHEDULES.values()} == {dg.DefaultScheduleStatus.STOPPED}


@pytest.mark.parametrize(
    ("name", "partitions_def", "codes"),
    [
        ("hk_weekly_refresh", "hk_codes", ["HK.00700", "HK.09988", "HK.00005"]),
        ("us_weekly_refresh", "us_codes", ["US.AAPL", "US.SPY"]),
    ],
)
def test_one_run_covers_every_current_code(
    name: str, partitions_def: str, codes: list[str], instance: dg.DagsterInstance
) -> None:
    instance.add_dynamic_partitions(partitions_def, codes)
    other = "us_codes" if partitions_def == "hk_codes" else "hk_codes"
    instance.add_dynamic_partitions(other, ["US.TSLA" if other == "us_codes" else "HK.02800"])

    request = evaluate(name, instance)

    assert isinstance(request, dg.RunRequest)
    assert request.tags[ASSET_PARTITION_RANGE_START_TAG] == codes[0]
    assert request.tags[ASSET_PARTITION_RANGE_END_TAG] == codes[-1]
    assert request.partition_key is None  # a range, not one run per code
    assert request.partition_key_range == dg.PartitionKeyRange(codes[0], codes[-1])


def test_no_codes_skips_with_a_reason(instance: dg.DagsterInstance) -> None:
    result = evaluate("hk_weekly_refresh", instance)
    assert isinstance(result, dg.SkipReason)
    assert "watchlist_partitions" in (result.skip_message or "")
