"""The two assets, `us_short_interest` and `hk_short_interest`: one partition per watchlist code.

A run loads every partition it was given (single-run backfill policy), over every configured
gateway at once, so a UI backfill of hundreds of codes is one run, not hundreds. Each code's
materialization, with its own counts and the gateway that served it, is recorded the moment the code
is loaded: a long backfill shows progress in the UI, and a run that dies halfway still records what
it committed. Failed codes fail the run only after the others are loaded. The table's checks run in
the same op, after the load (or alone, when only checks are selected).

Why the op records materializations itself instead of returning one result for all partitions:
Dagster then needs per-partition metadata through `add_asset_metadata`, which re-resolves the run's
partition range on every call, a database round trip per code that dominated large refreshes.
"""

import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import dagster as dg
import sqlalchemy as sa
from pydantic import Field

from pipelines.config import ConfigError
from pipelines.crawl.crawler import CodeResult, describe_failure
from pipelines.crawl.events import CrawlEvent, EventKind
from pipelines.crawl.gateway_pool import GatewayUsage
from pipelines.crawl.outage import DependencyDownError, stopped_message
from pipelines.orchestration.checks import check_specs, evaluate_checks
from pipelines.orchestration.failed_partitions import mark_not_loaded
from pipelines.orchestration.jobs import asset_key_for
from pipelines.orchestration.loading import CodeFailure, GatewayReport, load_codes
from pipelines.orchestration.metadata import load_summary, row_count, table_metadata
from pipelines.orchestration.partitions import partition_name, partitions_for
from pipelines.orchestration.quality import market_today
from pipelines.orchestration.resources import GatewayResource, WarehouseResource
from pipelines.orchestration.run_retries import first_attempt_start, loaded_since
from pipelines.orchestration.universe import UNIVERSE_KEY
from pipelines.universe.store import note_histories, resting_codes
from pipelines.warehouse.engine import read_connection
from pipelines.warehouse.errors import WarehouseError
from pipelines.warehouse.schema import table_for
from proto_client.encryption import KeyFileError
from proto_client.errors import GatewayConnectionError, QuoteLoginError
from proto_client.security import Market

GROUP = "short_interest"
# Steps in this pool talk to the gateway; dagster.yaml limits how many run at once.
GATEWAY_POOL = "opend_gateway"
# The rate limit's wait is logged at most this often (seconds): once a window would be a line every 30 s.
WAIT_NOTICE_EVERY = 600.0

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


class OutageStoppedRunError(dg.Failure):
    """The gateway or the warehouse stayed down past SHORTINTEREST_OUTAGE_TIMEOUT; run retries take over."""


@dataclass(frozen=True, slots=True)
class _Load:
    """One run's load: the asset it records, what it crawls with, and where it writes."""

    market: Market
    key: dg.AssetKey
    table: sa.Table
    full: bool
    gateway: GatewayResource
    database_url: str


def short_interest_asset(market: Market) -> dg.AssetsDefinition:
    # BackfillPolicy is marked beta; it is what makes a backfill one run instead of one per code.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return _define(market)


def _define(market: Market) -> dg.AssetsDefinition:
    table = table_for(market)
    key = asset_key_for(market)
    spec = dg.AssetSpec(
        key,
        description=_DESCRIPTIONS[market],
        partitions_def=partitions_for(market),
        group_name=GROUP,
        kinds={"sql"},
        metadata=table_metadata(table),
        skippable=True,  # materializations are recorded per code by the op, not by an output
        deps=[UNIVERSE_KEY],  # the resolved watchlist (securities) says which codes are partitions
    )

    @dg.multi_asset(
        name=key.to_python_identifier(),
        specs=[spec],
        check_specs=check_specs(market, key),
        can_subset=True,  # run the checks alone, or the load without them
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=GATEWAY_POOL,
    )
    def _asset(
        context: dg.AssetExecutionContext,
        config: LoadConfig,
        gateway: GatewayResource,
        warehouse: WarehouseResource,
    ) -> Iterator[dg.AssetMaterialization | dg.AssetCheckResult]:
        failures: list[CodeFailure] = []
        lost: list[GatewayUsage] = []
        loaded = 0
        with warehouse.engine() as engine:
            if key in context.selected_asset_keys:
                load = _Load(market, key, table, config.full, gateway, warehouse.database_url)
                for event in _load(context, load, engine):
                    if isinstance(event, CodeFailure):
                        failures.append(event)
                        mark_not_loaded(context, key, [event.code])
                    elif isinstance(event, GatewayReport):
                        lost = event.lost
                    else:
                        loaded += 1
                        yield event
            checks = [k.name for k in context.selected_asset_check_keys]
            if checks:
                started = time.monotonic()
                expected = context.instance.get_dynamic_partitions(partition_name(market))
                yield from evaluate_checks(
                    market, key, checks, engine, today=market_today(market), expected_codes=expected
                )
                context.log.info(f"{len(checks)} check(s) evaluated in {time.monotonic() - started:.1f} s")
        if failures:
            order = {code: index for index, code in enumerate(context.partition_keys)}
            raise _failure(sorted(failures, key=lambda f: order.get(f.code, len(order))), loaded, lost)

    return _asset


def _load(
    context: dg.AssetExecutionContext, load: _Load, engine: sa.Engine
) -> Iterator[dg.AssetMaterialization | CodeFailure | GatewayReport]:
    """Each loaded code's materialization as soon as it is committed, each failed code, then the gateways.

    An automatic retry skips what earlier attempts loaded, and waits for the gateway and the warehouse
    at start (run retries have no delay of their own).
    """
    codes, retry = _codes_to_load(context, engine)
    codes = _due(context, engine, codes)  # a code resting until its monthly re-check is not one the run failed
    done: set[str] = set()
    try:
        yield from _crawl_and_record(context, load, engine, codes, retry, done)
    except Exception:
        # Whatever stops the load, the codes it did not reach show as failed (failed_partitions).
        mark_not_loaded(context, load.key, [code for code in codes if code not in done])
        raise


def _crawl_and_record(
    context: dg.AssetExecutionContext,
    load: _Load,
    engine: sa.Engine,
    codes: list[str],
    retry: bool,
    done: set[str],
) -> Iterator[dg.AssetMaterialization | CodeFailure | GatewayReport]:
    """The load proper; adds each code to `done` as it finishes, loaded or failed."""
    results: list[CodeResult] = []
    prefix = load.market.prefix
    try:
        settings = load.gateway.settings(load.database_url)
        how = "full re-crawl" if load.full else "incremental; codes never loaded get their whole history"
        context.log.info(
            f"loading {len(codes)} {prefix} code(s) ({how}) from "
            + ", ".join(f"{g.name} (at most {g.rate_limit} requests/seconds)" for g in settings.all_gateways)
        )
        outcomes = load_codes(
            settings,
            load.market,
            codes,
            full=load.full,
            log=context.log,
            on_event=_event_logger(context),
            wait_at_start=retry,
        )
        for outcome in outcomes:
            if isinstance(outcome, GatewayReport):
                yield outcome
                continue
            done.add(outcome.code)
            if isinstance(outcome, CodeFailure):
                yield outcome
                continue
            results.append(outcome)
            summary = load_summary(outcome, _row_count(context, load, engine, outcome.code))
            yield dg.AssetMaterialization(asset_key=load.key, partition=outcome.code, description=summary.line())
        _note(context, engine, results)
    except DependencyDownError as exc:
        not_loaded = [code for code in codes if code not in done]
        raise OutageStoppedRunError(
            description=stopped_message(exc, not_loaded),
            metadata={
                "dependency": exc.dependency,
                "down_seconds": round(exc.down_for, 1),
                "not_loaded": dg.MetadataValue.json(not_loaded),
            },
        ) from exc
    except (ConfigError, KeyFileError, GatewayConnectionError, WarehouseError) as exc:
        # Nothing was loaded: say what to fix, without a traceback through the crawler.
        raise dg.Failure(description=f"no {prefix} code was loaded: {exc}") from exc
    except QuoteLoginError as exc:
        # No code can get past it; the codes materialized before it stay loaded.
        raise dg.Failure(description=f"{prefix} load stopped: {exc}") from exc


def _due(context: dg.AssetExecutionContext, engine: sa.Engine, codes: list[str]) -> list[str]:
    """The run's codes less those whose last crawl, within a month, found no history (re-checked monthly).

    A warehouse that cannot say (not migrated, down) rests none: the load then says what is wrong with it.
    """
    try:
        resting = resting_codes(engine, codes)
    except sa.exc.SQLAlchemyError:
        return codes
    if resting:
        context.log.info(
            f"{len(resting)} code(s) whose last crawl found no history are re-checked monthly, not in this run: "
            + ", ".join(sorted(resting)[:5])
        )
    return [code for code in codes if code not in resting]


def _note(context: dg.AssetExecutionContext, engine: sa.Engine, results: list[CodeResult]) -> None:
    try:
        note_histories(engine, results)
    except sa.exc.SQLAlchemyError as exc:
        context.log.warning(f"which codes found no history was not recorded: {describe_failure(exc)}")


def _row_count(context: dg.AssetExecutionContext, load: _Load, engine: sa.Engine, code: str) -> int | None:
    """The committed code's row count, read on a connection of its own; None if the read fails.

    A checkout per code lets the pool's pre-ping replace a connection that a warehouse restart killed,
    and each read starts after the code's last commit, so it sees what the code just wrote. The code's data is
    committed either way, so a failed read drops the count, never the materialization: without
    it, a retry would skip the code as loaded and leave its partition unmaterialized.
    """
    try:
        with read_connection(engine) as conn:
            return row_count(conn, load.table, code)
    except sa.exc.SQLAlchemyError as exc:
        context.log.warning(
            f"{code}: loaded, but its materialization goes without its row count, which could not be read: "
            f"{describe_failure(exc)}"
        )
        return None


def _codes_to_load(context: dg.AssetExecutionContext, engine: sa.Engine) -> tuple[list[str], bool]:
    """The run's codes, less those earlier attempts loaded if this run is an automatic retry; and whether it is."""
    codes = list(context.partition_keys)
    since = first_attempt_start(context)
    if since is None:
        return codes, False
    loaded = loaded_since(engine, codes, since)
    if loaded:
        context.log.info(
            f"retry of a run first started {since:%Y-%m-%d %H:%M:%S} UTC: {len(loaded)} code(s) it loaded are "
            f"skipped, {len(codes) - len(loaded)} left"
        )
    return [code for code in codes if code not in loaded], True


def _event_logger(context: dg.AssetExecutionContext) -> Callable[[CrawlEvent], None]:
    """Surface what a person waits on as it happens: retries, the rate limit, and long histories page by page.

    Every log line is an event-log row (about 0.7 KB with its index entries), and a weekly refresh held to the
    gateway's 30 requests per 30 s waits once a window for 10,000 codes: so the rate limit's wait is said once
    per WAIT_NOTICE_EVERY, not every window, and a page is logged only past a code's first (the incremental
    refresh reads one page a code, whose wait its materialization already shows).
    """
    waited_so_far: dict[str, float] = {}
    last_wait_notice = -WAIT_NOTICE_EVERY

    def on_event(event: CrawlEvent) -> None:
        nonlocal last_wait_notice
        if event.kind is EventKind.RETRY:
            context.log.warning(f"{event.code}: {event.message}")
        elif event.kind is EventKind.WAIT:
            now = time.monotonic()
            if now - last_wait_notice >= WAIT_NOTICE_EVERY:
                last_wait_notice = now
                context.log.info(f"{event.code}: {event.message}")
        elif event.kind is EventKind.PAGE:
            if event.pages > 1 and event.waited > waited_so_far.get(event.code, 0.0) + 0.05:
                context.log.info(
                    f"{event.code}: page {event.pages} stored after waiting for the rate limit, "
                    f"{event.rows} rows so far, {event.waited:.1f} s waited"
                )
            waited_so_far[event.code] = event.waited

    return on_event


def _failure(failures: list[CodeFailure], loaded: int, lost: list[GatewayUsage]) -> CodesFailedError:
    names = ", ".join(f.code for f in failures)
    details = "\n".join(f"- {f.code}: {f.error}" for f in failures)
    gateways = "".join(f"\nGateway {g.name} was lost: {g.lost}" for g in lost)
    return CodesFailedError(
        description=(
            f"{len(failures)} of {len(failures) + loaded} code(s) failed: {names}. "
            f"{loaded} other code(s) were loaded.\n{details}{gateways}"
        ),
        metadata={
            "failed_codes": dg.MetadataValue.json([f.code for f in failures]),
            "errors": dg.MetadataValue.json({f.code: f.error for f in failures}),
            "lost_gateways": dg.MetadataValue.json({g.name: g.lost for g in lost}),
        },
    )


def short_interest_assets() -> list[dg.AssetsDefinition]:
    return [short_interest_asset(Market.US), short_interest_asset(Market.HK)]
