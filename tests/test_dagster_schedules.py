"""Weekly schedules: market time zones, and one run request over all of the market's current codes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from pipelines.orchestration.schedules import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PUBLICATION_TAG,
    weekly_schedules,
)
from proto_client.publication import next_publication, publications
from proto_client.security import Market

SCHEDULES = {s.name: s for s in weekly_schedules()}


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """A persistent (temporary-directory) instance: schedule contexts need an instance reference."""
    with dg.instance_for_test() as instance:
        yield instance


# A Saturday tick in Hong Kong, and the Wednesday tick after FINRA's Tuesday 27 January 2026 publication.
TICKS = {
    "hk_weekly_refresh": datetime(2026, 5, 2, 9, 0, tzinfo=ZoneInfo("Asia/Hong_Kong")),
    "us_weekly_refresh": datetime(2026, 1, 28, 20, 0, tzinfo=ZoneInfo("America/New_York")),
}


def evaluate(name: str, instance: dg.DagsterInstance, when: datetime | None = None) -> dg.RunRequest | dg.SkipReason:
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=when or TICKS[name])
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


def test_us_ticks_over_a_year_run_once_after_each_finra_publication(instance: dg.DagsterInstance) -> None:
    instance.add_dynamic_partitions("us_codes", ["US.AAPL", "US.SPY"])
    new_york = ZoneInfo("America/New_York")
    published = [p.published for p in publications(Market.US, date(2025, 12, 25), date(2026, 12, 31))]
    first = datetime(2026, 1, 7, 20, 0, tzinfo=new_york)  # the first Wednesday of 2026
    ticks = [first + timedelta(weeks=n) for n in range(52)]
    assert all(t.weekday() == 2 and t.hour == 20 and t.year == 2026 for t in ticks)

    results = {tick.date(): evaluate("us_weekly_refresh", instance, tick) for tick in ticks}

    runs = [day for day, result in results.items() if isinstance(result, dg.RunRequest)]
    assert len(runs) == 24
    for day in runs:  # each run comes within a week after a publication, and names it
        assert any(0 <= (day - p).days < 7 for p in published), day
        request = results[day]
        assert isinstance(request, dg.RunRequest)
        assert request.tags[PUBLICATION_TAG]
    for p in published:  # and no publication of the year waits for a second tick
        if p >= ticks[0].date() - timedelta(days=6):
            assert any(0 <= (day - p).days < 7 for day in runs), p
    for day, result in results.items():
        if isinstance(result, dg.SkipReason):
            upcoming = next_publication(Market.US, day)
            assert f"published {upcoming.published:%a %Y-%m-%d}" in (result.skip_message or "")
            assert upcoming.report.isoformat() in (result.skip_message or "")


def test_the_us_skip_says_which_publication_comes_next(instance: dg.DagsterInstance) -> None:
    instance.add_dynamic_partitions("us_codes", ["US.AAPL"])
    # Wednesday 4 February 2026: FINRA published on 27 January (last week's tick) and next on 10 February.
    result = evaluate("us_weekly_refresh", instance, datetime(2026, 2, 4, 20, 0, tzinfo=ZoneInfo("America/New_York")))
    assert isinstance(result, dg.SkipReason)
    assert result.skip_message == (
        "no FINRA publication since the last weekly tick, so nothing new to load. Next: the 2026-01-30 "
        "settlement-date figures, published Tue 2026-02-10 around 18:00 New York time; the tick of "
        "Wed 2026-02-11 loads them."
    )


def test_the_schedules_describe_when_they_run() -> None:
    us = SCHEDULES["us_weekly_refresh"].description or ""
    assert "7 NYSE trading days after each settlement date" in us
    assert "24 runs a year" in us and "skips" in us
    assert "SFC" in (SCHEDULES["hk_weekly_refresh"].description or "")
