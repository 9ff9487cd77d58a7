"""Weekly refreshes timed to each market's publication schedule, in the market's own time zone.

- HK: the SFC publishes the week's aggregated reportable short positions on Friday after the close, so
  Saturday 09:00 Asia/Hong_Kong reads each week's figures the morning after.
- US: FINRA disseminates short interest twice a month around 18:00 ET; a weekly Wednesday 20:00
  America/New_York run picks every publication up within a week.

Dynamic partitions have no time to derive keys from, so each tick asks the instance for the market's
current codes and launches one run over all of them (the assets' single-run backfill policy).
"""

import dagster as dg

from pipelines.orchestration.jobs import refresh_job_name
from pipelines.orchestration.partitions import partition_name
from proto_client.security import Market

HK_CRON = "0 9 * * 6"  # Saturday 09:00
US_CRON = "0 20 * * 3"  # Wednesday 20:00

# Dagster's run tags for "this run covers partitions start..end" (what single-run backfills set).
ASSET_PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
ASSET_PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"


def run_request_for_codes(codes: list[str], market: Market) -> dg.RunRequest | dg.SkipReason:
    """One run covering every code of the market, as the key range first..last."""
    if not codes:
        return dg.SkipReason(
            f"no {market.prefix} codes in {partition_name(market)}; the watchlist_partitions sensor adds them"
        )
    return dg.RunRequest(
        tags={ASSET_PARTITION_RANGE_START_TAG: codes[0], ASSET_PARTITION_RANGE_END_TAG: codes[-1]},
    )


def weekly_refresh_schedule(market: Market, cron: str) -> dg.ScheduleDefinition:
    name = f"{market.prefix.lower()}_weekly_refresh"

    @dg.schedule(
        name=name,
        cron_schedule=cron,
        execution_timezone=market.tz_name,
        job_name=refresh_job_name(market),
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=f"Weekly incremental refresh of every {market.prefix} code ({cron} {market.tz_name}).",
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        codes = list(context.instance.get_dynamic_partitions(partition_name(market)))
        return run_request_for_codes(codes, market)

    return _schedule


def weekly_schedules() -> list[dg.ScheduleDefinition]:
    return [weekly_refresh_schedule(Market.HK, HK_CRON), weekly_refresh_schedule(Market.US, US_CRON)]
