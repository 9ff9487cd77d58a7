"""The two assets, `us_short_interest` and `hk_short_interest`: one partition per watchlist code.

A run loads every partition it was given over one gateway connection (single-run backfill policy),
so a UI backfill of hundreds of codes is one run, not hundreds. Each loaded code gets its own
materialization with its own counts; failed codes fail the run only after the others are loaded.
"""

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import dagster as dg
import sqlalchemy as sa
from pydantic import Field

from pipelines.config import ConfigError
from pipelines.crawl.crawler import CodeResult
from pipelines.crawl.events import CrawlEvent, EventKind
from pipelines.orchestration.jobs import asset_key_for
from pipelines.orchestration.loading import RunLoad, load_codes
from pipelines.orchestration.metadata import column_schema, newest_rows_preview, row_count, table_metadata
from pipelines.orchestration.partitions import partitions_for
from pipelines.orchestration.resources import GatewayResource, WarehouseResource, settings_for_run
from pipelines.warehouse.errors import WarehouseError
from pipelines.warehouse.schema import table_for
from proto_client.errors import GatewayConnectionError
from proto_client.security import Market

GROUP = "short_interest"
# Steps in this pool talk to the gateway; dagster.yaml limits how many run at once.
GATEWAY_POOL = "opend_gateway"

_DESCRIPTIONS = {
    Market.US: (
        "FINRA short interest for US watchlist codes (twice a month, settlement dates), one row per code "
        "and trade date, loaded from the OpenD gateway."
    ),
    Market.HK: (
        "SFC weekly aggregated reportable short positions for HK watchlist codes, one row per code and "
        "trade date, loaded from the OpenD gateway."
    ),
}


class LoadConfig(dg.Config):
    """Run config of both assets."""

    full: bool = Field(
        default=False,
        description=(
            "Re-read each code's whole history (and pick up revisions of any date) instead of only the "
            "pages newer than what the warehouse holds."
        ),
    )


class CodesFailedError(dg.Failure):
    """Some codes of the run could not be loaded; the others were loaded and materialized."""


def code_metadata(result: CodeResult, preview: str, rows: int, schema: dg.TableSchema) -> dict[str, Any]:
    """One code's materialization metadata, as read in the UI."""
    return {
        "rows_inserted": result.inserted,
        "rows_updated": result.updated,
        "rows_unchanged": result.unchanged,
        "requests": result.requests,
        "pages": result.pages,
        "rate_limit_wait_seconds": round(result.waited_seconds, 3),
        "elapsed_seconds": round(result.elapsed_seconds, 3),
        "mode": result.mode,
        "newest_trade_date": str(result.newest_trade_date) if result.newest_trade_date else "none",
        "newest_rows": dg.MetadataValue.md(preview),
        "dagster/row_count": rows,
        "dagster/column_schema": schema,
    }


def short_interest_asset(market: Market) -> dg.AssetsDefinition:
    table = table_for(market)
    schema = column_schema(table)
    key = asset_key_for(market)

    # BackfillPolicy is marked beta; it is what makes a backfill one run instead of one per code.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return _define(market, key, table, schema)


def _define(market: Market, key: dg.AssetKey, table: sa.Table, schema: dg.TableSchema) -> dg.AssetsDefinition:
    @dg.asset(
        key=key,
        description=_DESCRIPTIONS[market],
        partitions_def=partitions_for(market),
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=GROUP,
        pool=GATEWAY_POOL,
        kinds={"sql"},
        metadata=table_metadata(table),
    )
    def _asset(
        context: dg.AssetExecutionContext,
        config: LoadConfig,
        gateway: GatewayResource,
        warehouse: WarehouseResource,
    ) -> Iterator[dg.AssetMaterialization | dg.MaterializeResult]:
        codes = list(context.partition_keys)
        how = "full re-crawl" if config.full else "incremental; codes never loaded get their whole history"
        context.log.info(
            f"loading {len(codes)} {market.prefix} code(s) ({how}) from {gateway.host}:{gateway.port}, "
            f"at most {gateway.rate_limit} requests/seconds"
        )
        try:
            settings = settings_for_run(gateway, warehouse)
            outcome = load_codes(
                settings, market, codes, full=config.full, log=context.log, on_event=_event_logger(context)
            )
        except (ConfigError, GatewayConnectionError, WarehouseError) as exc:
            # Nothing was loaded: say what to fix, without a traceback through the crawler.
            raise dg.Failure(description=f"no {market.prefix} code was loaded: {exc}") from exc
        per_code: dict[str, dict[str, Any]] = {}
        with warehouse.engine() as engine, engine.connect() as conn:
            for result in outcome.loaded:
                preview = newest_rows_preview(conn, table, result.code)
                per_code[result.code] = code_metadata(result, preview, row_count(conn, table, result.code), schema)
        if not outcome.ok:
            # The step fails, so Dagster records no materialization of its own: yield the loaded codes' here.
            for code, metadata in per_code.items():
                yield dg.AssetMaterialization(asset_key=key, partition=code, metadata=metadata)
            raise _failure(outcome, len(codes))
        for code, metadata in per_code.items():
            context.add_asset_metadata(metadata, partition_key=code)
        yield dg.MaterializeResult()

    return _asset


def _event_logger(context: dg.AssetExecutionContext) -> Callable[[CrawlEvent], None]:
    """Surface progress as it happens: retries as warnings, and pages at info level when the rate limit
    held them back (so a throttled run visibly moves), otherwise at debug level."""
    waited_so_far: dict[str, float] = {}

    def on_event(event: CrawlEvent) -> None:
        if event.kind is EventKind.RETRY:
            context.log.warning(f"{event.code}: {event.message}")
        elif event.kind is EventKind.PAGE:
            message = (
                f"{event.code}: page {event.pages} stored, {event.rows} rows so far, "
                f"{event.waited:.1f} s waited for the rate limit"
            )
            throttled = event.waited > waited_so_far.get(event.code, 0.0) + 0.05
            waited_so_far[event.code] = event.waited
            (context.log.info if throttled else context.log.debug)(message)

    return on_event


def _failure(outcome: RunLoad, total: int) -> CodesFailedError:
    names = ", ".join(f.code for f in outcome.failed)
    details = "\n".join(f"- {f.code}: {f.error}" for f in outcome.failed)
    return CodesFailedError(
        description=(
            f"{len(outcome.failed)} of {total} code(s) failed: {names}. "
            f"{len(outcome.loaded)} other code(s) were loaded.\n{details}"
        ),
        metadata={
            "failed_codes": dg.MetadataValue.json([f.code for f in outcome.failed]),
            "errors": dg.MetadataValue.json({f.code: f.error for f in outcome.failed}),
            "loaded_codes": dg.MetadataValue.json([r.code for r in outcome.loaded]),
        },
    )


def short_interest_assets() -> list[dg.AssetsDefinition]:
    return [short_interest_asset(Market.US), short_interest_asset(Market.HK)]
