"""`shortinterest load [CODE ...] [--full]`: crawl codes (default: the watchlist) into the warehouse.

Everything that can be checked before the first request is: settings, every code, the schema, and
that a gateway answers. Then every code is crawled even if some fail; the exit status is non-zero
when any did, and the summary names each failed code and why. An outage of the gateway or the
warehouse pauses the load (a line when it begins, one a minute, one when it ends); one that outlasts
SHORTINTEREST_OUTAGE_TIMEOUT stops it with exit status 75 (EX_TEMPFAIL: try again later), naming the
codes not loaded, whose cursors the next load resumes from.
"""

from __future__ import annotations

import argparse
import logging
import sys

import sqlalchemy as sa

from pipelines.config import ConfigError, Settings
from pipelines.crawl.crawler import CodeResult, open_crawler
from pipelines.crawl.estimate import estimate_load
from pipelines.crawl.outage import DependencyDownError, stopped_message
from pipelines.crawl.progress import LoadProgress, summary
from pipelines.crawl.watchlist import Watchlist, WatchlistError, load_watchlist, watchlist_from_entries
from pipelines.failures import fail, first_line
from pipelines.warehouse import WarehouseNotMigratedError, mask_url
from pipelines.warehouse.errors import WarehouseError
from proto_client.encryption import KeyFileError
from proto_client.errors import EncryptionError, GatewayConnectionError, QuoteLoginError

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
        "Gateway: OPEND_HOST/OPEND_PORT (encrypted link: OPEND_RSA_KEY_FILE); rate limit: OPEND_RATE_LIMIT (shared by "
        "all loads on one warehouse); "
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
    progress = LoadProgress(out, live=out.isatty())
    results: list[CodeResult] = []
    try:
        with open_crawler(settings, on_event=progress.on_event, on_outage=progress.note) as crawler:
            with crawler.engine.connect() as conn:
                estimate = estimate_load(conn, watchlist.codes, settings.rate_limit, full=args.full)
            print(
                f"loading {'full history' if args.full else 'new rows'} from {crawler.client.endpoint} "
                f"into {mask_url(crawler.engine.url)}: {estimate.describe()}",
                file=out,
                flush=True,
            )
            with progress.running(estimate):
                for index, code in enumerate(watchlist.codes):
                    progress.starting(index, code)
                    result = crawler.crawl_code(code, full=args.full)
                    progress.finished(result)
                    results.append(result)
    except KeyFileError as exc:
        return _fail(f"OPEND_RSA_KEY_FILE: {exc}\nnothing was loaded", EXIT_USAGE)
    except (EncryptionError, QuoteLoginError) as exc:
        return _fail(_stopped(str(exc), results), EXIT_FAILED)
    except DependencyDownError as exc:
        print(file=out)
        print(summary(results), file=out, flush=True)
        return _fail(stopped_message(exc, watchlist.codes[len(results) :]), EXIT_OUTAGE)
    except WarehouseNotMigratedError as exc:
        return _fail(str(exc), EXIT_FAILED)
    except WarehouseError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except GatewayConnectionError as exc:
        message = str(exc)
        if "shortinterest gateway --demo" not in message:
            message += (
                f"\nis OpenD running? For a demo, start `shortinterest gateway --demo --port {settings.opend_port}`"
            )
        return _fail(message, EXIT_FAILED)
    except sa.exc.SQLAlchemyError as exc:
        return _fail(
            f"cannot use the warehouse database {mask_url(settings.database_url)}: {first_line(exc)}", EXIT_FAILED
        )

    print(file=out)
    print(summary(results), file=out, flush=True)
    return 0 if all(r.ok for r in results) else EXIT_FAILED


def _codes(codes: list[str], settings: Settings) -> Watchlist:
    if not codes:
        return load_watchlist(settings.watchlist_path)
    watchlist = watchlist_from_entries(codes, "command line")
    for note in watchlist.notes:
        log.warning("command line: %s", note)
    return watchlist


def _stopped(reason: str, results: list[CodeResult]) -> str:
    """A load stopped for a reason no code can get past: say it once, and what was loaded before it."""
    if not results:
        return f"{reason}\nnothing was loaded"
    return f"{reason}\nstopped after {len(results)} code{'s' if len(results) != 1 else ''}:\n{summary(results)}"


def _fail(message: str, status: int) -> int:
    return fail("shortinterest load", message, status)
