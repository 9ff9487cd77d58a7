"""Weekly ticks timed to each market's publication schedule, in the market's own time zone.

- HK: the SFC publishes the week's aggregated reportable short positions a week after the position
  date, on Friday after the close, so every Saturday 09:00 Asia/Hong_Kong refreshes each code the
  morning after.
- US: FINRA publishes twice a month, 7 NYSE trading days after each settlement date (the 15th, or the
  last trading day before it, and the month's last trading day), around 18:00 New York time. The
  Wednesday 20:00 America/New_York tick launches the refresh only when a publication day fell in the
  seven days up to the tick, and otherwise skips, naming the next publication: 24 runs a year, each
  within a week of a publication, instead of 52 of which more than half would find nothing new.

Requests are the scarce resource, so a tick that can find nothing new sends none. A failed run is
retried by Dagster's run retries, not left for the next tick. Dynamic partitions have no time to
derive keys from, so each tick asks the instance for the market's current codes and launches one run
over all of them (the assets' single-run backfill policy).
"""

from datetime import date, datetime, timedelta

import dagster as dg

from pipelines.orchestration.jobs import refresh_job_name
from pipelines.orchestration.partitions import partition_name
from proto_client.publication import Publication, next_publication, publications
from proto_client.security import Market

HK_CRON = "0 9 * * 6"  # Saturday 09:00
US_CRON = "0 20 * * 3"  # Wednesday 20:00
US_TICK_WEEKDAY = 2  # Wednesday, as in US_CRON
TICK_WINDOW_DAYS = 7  # a weekly tick covers the publications of the seven days up to it

# Dagster's run tags for "this run covers partitions start..end" (what single-run backfills set).
ASSET_PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
ASSET_PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"
# The report(s) a US run was launched for, as position dates.
PUBLICATION_TAG = "shortinterest/publication"

_DESCRIPTIONS = {
    Market.HK: (
        "Weekly incremental refresh of every HK code, Saturday 09:00 Asia/Hong_Kong: the morning after the "
        "SFC's Friday publication of the positions of the week before."
    ),
    Market.US: (
        "Weekly tick, Wednesday 20:00 America/New_York. FINRA publishes short interest 7 NYSE trading days "
        "after each settlement date (the 15th, or the last trading day before it, and the month's last "
        "trading day), around 18:00 New York time. The tick launches the incremental refresh of every US "
        "code only when a publication day fell in the seven days up to it (24 runs a year, each within a "
        "week of a publication); otherwise it skips, saying which publication comes next and when. A "
        "failed run is retried by Dagster, not left for the next tick."
    ),
}


def run_request_for_codes(codes: list[str], market: Market) -> dg.RunRequest | dg.SkipReason:
    """One run covering every code of the market, as the key range first..last."""
    if not codes:
        return dg.SkipReason(
            f"no {market.prefix} codes in {partition_name(market)}; the watchlist_partitions sensor adds them"
        )
    return dg.RunRequest(
        tags={ASSET_PARTITION_RANGE_START_TAG: codes[0], ASSET_PARTITION_RANGE_END_TAG: codes[-1]},
    )


def us_publications_before_tick(tick_day: date) -> list[Publication]:
    """FINRA publications on the seven days up to and including the tick's day."""
    return publications(Market.US, tick_day - timedelta(days=TICK_WINDOW_DAYS - 1), tick_day)


def us_skip_reason(tick_day: date) -> dg.SkipReason:
    """Why a US tick sends nothing, and when the next run will come."""
    upcoming = next_publication(Market.US, tick_day)
    next_tick = upcoming.published + timedelta(days=(US_TICK_WEEKDAY - upcoming.published.weekday()) % 7)
    return dg.SkipReason(
        f"no FINRA publication since the last weekly tick, so nothing new to load. Next: the "
        f"{upcoming.report.isoformat()} settlement-date figures, published {upcoming.published:%a %Y-%m-%d} "
        f"around 18:00 New York time; the tick of {next_tick:%a %Y-%m-%d} loads them."
    )


def _tick_day(context: dg.ScheduleEvaluationContext, market: Market) -> date:
    moment = context.scheduled_execution_time or datetime.now(market.tz)
    return moment.astimezone(market.tz).date()


def weekly_refresh_schedule(market: Market, cron: str) -> dg.ScheduleDefinition:
    name = f"{market.prefix.lower()}_weekly_refresh"

    @dg.schedule(
        name=name,
        cron_schedule=cron,
        execution_timezone=market.tz_name,
        job_name=refresh_job_name(market),
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=_DESCRIPTIONS[market],
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        new: list[Publication] = []
        if market is Market.US:
            tick_day = _tick_day(context, market)
            new = us_publications_before_tick(tick_day)
            if not new:
                return us_skip_reason(tick_day)
        codes = list(context.instance.get_dynamic_partitions(partition_name(market)))
        request = run_request_for_codes(codes, market)
        if new and isinstance(request, dg.RunRequest):
            request = request.with_replaced_attrs(
                tags={**request.tags, PUBLICATION_TAG: ",".join(p.report.isoformat() for p in new)}
            )
        return request

    return _schedule


def weekly_schedules() -> list[dg.ScheduleDefinition]:
    return [weekly_refresh_schedule(Market.HK, HK_CRON), weekly_refresh_schedule(Market.US, US_CRON)]
