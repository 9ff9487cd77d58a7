"""The sensor that keeps `us_codes` / `hk_codes` equal to the watchlist, so adding a code is a file edit."""

import dagster as dg

from pipelines.crawl.watchlist import WatchlistError
from pipelines.orchestration.resources import WatchlistResource
from pipelines.orchestration.watchlist_sync import plan_sync


@dg.sensor(
    name="watchlist_partitions",
    description=(
        "Adds a partition for every new watchlist code and removes dropped ones. An invalid watchlist fails "
        "the tick, naming each bad entry, and leaves the partitions untouched."
    ),
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def watchlist_partitions_sensor(
    context: dg.SensorEvaluationContext, watchlist: WatchlistResource
) -> dg.SensorResult | dg.SkipReason:
    try:
        loaded = watchlist.load()
    except WatchlistError as exc:
        # Failing (rather than skipping) turns the tick red in the UI, where the message lists every bad entry.
        context.log.error(f"{exc}\npartitions are left unchanged until the watchlist is fixed")
        raise
    for note in loaded.notes:
        context.log.warning(f"watchlist {loaded.source}: {note}")
    plan = plan_sync(loaded.for_market, context.instance.get_dynamic_partitions)
    if not plan.changed:
        return dg.SkipReason(f"{len(loaded)} codes in {loaded.source}; partitions already match")
    context.log.info(plan.summary())
    return dg.SensorResult(dynamic_partitions_requests=plan.requests())
