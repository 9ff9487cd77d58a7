"""The universe asset: the watchlist resolved from its groups, plates and markets, written to `securities`.

It sits upstream of the two short-interest assets. A daily schedule materializes it (the UI can too); the
partitions sensor then follows the `securities` table, so keeping the partitions current costs no request. A
resolution that would drop more than half of the watchlist fails the run instead of retiring thousands of
partitions, unless the run's config says `allow_shrink`.
"""

from collections.abc import Sequence

import dagster as dg
from pydantic import Field

from pipelines.config import ConfigError
from pipelines.crawl.watchlist import WatchlistError
from pipelines.orchestration.resources import GatewayResource, WarehouseResource, WatchlistResource
from pipelines.universe.errors import ResolutionError
from pipelines.universe.refresh import refresh_universe
from pipelines.universe.store import Moved
from pipelines.warehouse.errors import WarehouseError
from pipelines.warehouse.migrate import ensure_migrated

UNIVERSE_KEY = dg.AssetKey("universe")
UNIVERSE_JOB = "universe_refresh"
DAILY_CRON = "30 7 * * *"  # 07:30 UTC: before Hong Kong's open, after New York's close
SHOWN = 20


class UniverseConfig(dg.Config):
    allow_shrink: bool = Field(
        default=False, description="Accept a resolution that drops more than half of the current watchlist."
    )


def _first(moved: Sequence[Moved]) -> list[str]:
    return [str(m) for m in moved[:SHOWN]]


@dg.asset(
    key=UNIVERSE_KEY,
    group_name="short_interest",
    kinds={"sql"},
    description=(
        "The watchlist resolved from its sources (codes, Futu watchlist groups, plate constituents, whole "
        "markets, minus exclude), with names, in the securities table. Only HK and US stocks and ETFs are "
        "taken; codes that leave keep their rows and stop being refreshed."
    ),
)
def universe(
    context: dg.AssetExecutionContext,
    config: UniverseConfig,
    gateway: GatewayResource,
    warehouse: WarehouseResource,
    watchlist: WatchlistResource,
) -> dg.MaterializeResult[None]:
    try:
        loaded = watchlist.load()
        settings = gateway.settings(warehouse.database_url)
        with warehouse.engine() as engine:
            ensure_migrated(engine)
            refresh = refresh_universe(settings, engine, loaded, allow_shrink=config.allow_shrink)
    except (WatchlistError, ConfigError, ResolutionError, WarehouseError) as exc:
        raise dg.Failure(description=f"the watchlist was not resolved, the last resolution stays: {exc}") from exc
    resolution, change = refresh.resolution, refresh.change
    context.log.info(
        f"{len(change.watchlist)} codes in the watchlist ({len(change.joined)} joined, {len(change.left)} left) "
        f"from {resolution.requests} requests"
    )
    return dg.MaterializeResult(
        metadata={
            "codes": len(change.watchlist),
            "members": len(resolution.members),
            "delisted": sum(m.delisted for m in resolution.members),
            "joined": dg.MetadataValue.json(_first(change.joined)),
            "joined_count": len(change.joined),
            "left": dg.MetadataValue.json(_first(change.left)),
            "left_count": len(change.left),
            "left_out": dg.MetadataValue.json(list(resolution.left_out[:SHOWN])),
            "requests": resolution.requests,
        }
    )


universe_job = dg.define_asset_job(
    name=UNIVERSE_JOB,
    selection=dg.AssetSelection.assets(UNIVERSE_KEY),
    description="Resolve the watchlist's groups, plates and markets into the securities table.",
)


@dg.schedule(
    name="universe_daily",
    cron_schedule=DAILY_CRON,
    execution_timezone="UTC",
    job=universe_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily resolution of the watchlist's sources; skips a watchlist of typed codes only.",
)
def universe_daily(
    context: dg.ScheduleEvaluationContext, watchlist: WatchlistResource
) -> dg.RunRequest | dg.SkipReason:
    try:
        loaded = watchlist.load()
    except WatchlistError as exc:
        return dg.SkipReason(f"the watchlist is invalid, nothing resolved: {exc}")
    if not loaded.sources.needs_gateway:
        return dg.SkipReason(f"{loaded.source} lists codes only: nothing to resolve")
    return dg.RunRequest()
