"""`shortinterest load [CODE ...] [--full]`: crawl codes (default: the watchlist) into the warehouse.

Everything that can be checked before the first request is: settings, every code, the schema, and
that a gateway answers. Then every code is crawled, over every configured gateway at once
(pipelines.crawl.gateway_pool), even if some fail; the exit status is non-zero when any did, and the
summary names each failed code and why, the gateway that served each code, and each gateway's
requests and seconds waited. An outage of the gateway or the
warehouse pauses the load (a line when it begins, one a minute, one when it ends); one that outlasts
SHORTINTEREST_OUTAGE_TIMEOUT stops it with exit status 75 (EX_TEMPFAIL: try again later), naming the
codes not loaded, whose cursors the next load resumes from.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import sqlalchemy as sa

from pipelines.config import ConfigError, Settings
from pipelines.crawl.crawler import CodeResult
from pipelines.crawl.estimate import estimate_load
from pipelines.crawl.gateway_pool import GatewayUsage, combined_rate, open_gateway_pool
from pipelines.crawl.outage import DependencyDownError, stopped_message
from pipelines.crawl.progress import LoadProgress, summary
from pipelines.crawl.watchlist import Watchlist, WatchlistError, load_watchlist, watchlist_from_entries
from pipelines.failures import fail, first_line
from pipelines.universe.errors import ResolutionError
from pipelines.universe.refresh import refresh_universe
from pipelines.universe.store import note_histories, resting_codes
from pipelines.warehouse import WarehouseNotMigratedError, mask_url, read_connection
from pipelines.warehouse.errors import WarehouseError
from proto_client.encryption import KeyFileError
from proto_client.errors import EncryptionError, GatewayConnectionError, InitConnectRefusedError, QuoteLoginError

EXIT_FAILED = 1  # some code failed, or the warehouse / gateway cannot be used
EXIT_USAGE = 2  # bad settings or codes: nothing was requested
EXIT_OUTAGE = 75  # EX_TEMPFAIL: the gateway or warehouse stayed down past SHORTINTEREST_OUTAGE_TIMEOUT

log = logging.getLogger("shortinterest.load")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "codes", nargs="*", metavar="CODE", help="codes to load, e.g. US.AAPL HK.00700 (default: the watchlist)"
    )
    parser.add_argument("--full", action="store_true", help="re-read every page of history instead of only what is new")
    parser.epilog = (
        "Gateways: OPEND_GATEWAYS (several, one per account) or OPEND_HOST/OPEND_PORT (encrypted link: "
        "OPEND_RSA_KEY_FILE); rate limit: OPEND_RATE_LIMIT per gateway (shared by all loads on one warehouse); "
        "warehouse: SHORTINTEREST_DATABASE_URL; watchlist: SHORTINTEREST_WATCHLIST; how long to wait out an outage "
        "of the gateway or the warehouse: SHORTINTEREST_OUTAGE_TIMEOUT (exit status 75 past it)."
    )


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s", stream=sys.stderr)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        return _fail(str(exc), EXIT_USAGE)
    try:
        watchlist = _codes(args.codes, settings)
    except WatchlistError as exc:
        return _fail(f"{exc}\nnothing was loaded", EXIT_USAGE)

    out = sys.stdout
    codes = watchlist.codes
    progress = LoadProgress(out, live=out.isatty(), show_gateway=len(settings.all_gateways) > 1)
    results: list[CodeResult] = []
    usage: list[GatewayUsage] = []
    try:
        with open_gateway_pool(settings, on_event=progress.on_event, on_outage=progress.note) as pool:
            if watchlist.sources.needs_gateway:
                codes = _resolved(settings, pool.engine, watchlist)
            with read_connection(pool.engine) as conn:
                estimate = estimate_load(conn, codes, combined_rate(settings.all_gateways), full=args.full)
            print(
                f"loading {'full history' if args.full else 'new rows'} from {_gateways(settings)} "
                f"into {mask_url(settings.database_url)}: {estimate.describe()}",
                file=out,
                flush=True,
            )
            for lost in pool.lost():
                print(f"gateway {lost.name} does not answer and is left out: {lost.lost}", file=out, flush=True)
            try:
                with progress.running(estimate):
                    for result in pool.crawl(codes, full=args.full, on_start=progress.starting):
                        progress.finished(result)
                        results.append(result)
            finally:
                usage = pool.usage()
            if watchlist.sources.needs_gateway:
                note_histories(pool.engine, results)
    except KeyFileError as exc:
        return _fail(f"OPEND_RSA_KEY_FILE: {exc}\nnothing was loaded", EXIT_USAGE)
    except (EncryptionError, QuoteLoginError) as exc:
        return _fail(_stopped(str(exc), results), EXIT_FAILED)
    except DependencyDownError as exc:
        print(file=out)
        print(summary(_in_order(results, codes), usage), file=out, flush=True)
        done = {r.code for r in results}
        return _fail(stopped_message(exc, [c for c in codes if c not in done]), EXIT_OUTAGE)
    except WarehouseNotMigratedError as exc:
        return _fail(str(exc), EXIT_FAILED)
    except ResolutionError as exc:
        return _fail(f"{exc}\nnothing was loaded", EXIT_FAILED)
    except WarehouseError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except GatewayConnectionError as exc:
        message = str(exc)
        # A gateway that refused InitConnect is running: its own words say what to fix, not how to start one.
        refused = isinstance(exc, InitConnectRefusedError)
        if not refused and "shortinterest gateway --demo" not in message and not settings.gateways:
            message += (
                f"\nis OpenD running? For a demo, start `shortinterest gateway --demo --port {settings.opend_port}`"
            )
        return _fail(message, EXIT_FAILED)
    except sa.exc.SQLAlchemyError as exc:
        return _fail(
            f"cannot use the warehouse database {mask_url(settings.database_url)}: {first_line(exc)}", EXIT_FAILED
        )

    print(file=out)
    print(summary(_in_order(results, codes), usage), file=out, flush=True)
    return 0 if all(r.ok for r in results) and len(results) == len(codes) else EXIT_FAILED


def _in_order(results: list[CodeResult], codes: Sequence[str]) -> list[CodeResult]:
    """Results in the watchlist's order: several gateways finish codes in any order."""
    order = {code: index for index, code in enumerate(codes)}
    return sorted(results, key=lambda r: order.get(r.code, len(order)))


def _gateways(settings: Settings) -> str:
    """Each gateway with its rate limit (requests/seconds), as the load's first line names them."""
    return ", ".join(f"{g.name} ({g.rate_limit} requests/seconds)" for g in settings.all_gateways)


def _codes(codes: list[str], settings: Settings) -> Watchlist:
    if not codes:
        return load_watchlist(settings.watchlist_path)
    watchlist = watchlist_from_entries(codes, "command line")
    for note in watchlist.notes:
        log.warning("command line: %s", note)
    return watchlist


def _resolved(settings: Settings, engine: sa.Engine, watchlist: Watchlist) -> tuple[str, ...]:
    """The watchlist's groups, plates and markets resolved first (a few requests), written to securities; the
    codes to load, less those whose last crawl within a month found no history."""
    refresh = refresh_universe(settings, engine, watchlist)
    change = refresh.change
    print(
        f"watchlist {watchlist.source} resolved in {refresh.resolution.requests} requests: "
        f"{len(change.watchlist)} codes, {len(change.joined)} joined, {len(change.left)} left",
        flush=True,
    )
    resting = resting_codes(engine, change.watchlist)
    if resting:
        first = sorted(resting)[:5]
        shown = ", ".join(first) + (f" and {len(resting) - 5} more" if len(resting) > 5 else "")
        print(f"not now, re-checked monthly as their last crawl found no history: {shown}", flush=True)
    return tuple(code for code in change.watchlist if code not in resting)


def _stopped(reason: str, results: list[CodeResult]) -> str:
    """A load stopped for a reason no code can get past: say it once, and what was loaded before it."""
    if not results:
        return f"{reason}\nnothing was loaded"
    return f"{reason}\nstopped after {len(results)} code{'s' if len(results) != 1 else ''}:\n{summary(results)}"


def _fail(message: str, status: int) -> int:
    return fail("shortinterest load", message, status)
