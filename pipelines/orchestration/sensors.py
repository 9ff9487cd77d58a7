"""The sensor that keeps `us_codes` / `hk_codes` equal to the watchlist, so adding a code is a file edit."""

from collections.abc import Callable, Sequence

import dagster as dg

from pipelines.crawl.watchlist import WatchlistError
from pipelines.orchestration.resources import WarehouseResource, WatchlistResource
from pipelines.orchestration.watchlist_sync import plan_sync
from pipelines.universe.store import watchlist_codes
from proto_client.security import Market


@dg.sensor(
    name="watchlist_partitions",
    description=(
        "Adds a partition for every new watchlist code and removes dropped ones. A watchlist made invalid "
        "after the code location loaded fails the tick, naming each bad entry, and leaves the partitions "
        "untouched (an invalid one fails the load). A watchlist of groups, plates or markets is followed "
        "through the securities table the universe asset writes: no request to OpenD."
    ),
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def watchlist_partitions_sensor(
    context: dg.SensorEvaluationContext, watchlist: WatchlistResource, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    try:
        loaded = watchlist.load()
    except WatchlistError as exc:
        # Failing (rather than skipping) turns the tick red in the UI, where the message lists every bad entry.
        context.log.error(f"{exc}\npartitions are left unchanged until the watchlist is fixed")
        raise
    for note in loaded.notes:
        context.log.warning(f"watchlist {loaded.source}: {note}")
    codes_for: Callable[[Market], Sequence[str]] = loaded.for_market
    count, source = len(loaded), loaded.source
    if loaded.sources.needs_gateway:
        with warehouse.engine() as engine:
            resolved = watchlist_codes(engine)
        if not resolved:
            return dg.SkipReason(f"{loaded.source} is not resolved yet: materialize the universe asset")
        by_market: dict[Market, list[str]] = {market: [] for market in Market}
        for code in resolved:
            by_market[Market[code[:2]]].append(code)
        codes_for, count, source = by_market.__getitem__, len(resolved), "the securities table"
    plan = plan_sync(codes_for, context.instance.get_dynamic_partitions)
    if not plan.changed:
        return dg.SkipReason(f"{count} codes in {source}; partitions already match")
    context.log.info(plan.summary())
    return dg.SensorResult(dynamic_partitions_requests=plan.requests())
