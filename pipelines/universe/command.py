"""`shortinterest watchlist [--dry-run] [--allow-shrink]`: resolve the watchlist's sources now and show it.

Prints the resolved watchlist (code, name, sources), then what changed since the last resolution (joined,
left, with names) and what the sources named that the short-interest API does not serve. `--dry-run`
resolves (a few requests) and writes nothing. A resolution that would drop more than half of the watchlist
is refused unless `--allow-shrink`; any failure leaves the last resolution in force.
"""

from __future__ import annotations

import argparse
import logging
import sys

import sqlalchemy as sa

from pipelines.config import ConfigError, Settings
from pipelines.crawl.watchlist import WatchlistError, load_watchlist
from pipelines.failures import fail, first_line
from pipelines.tables import format_table
from pipelines.universe.errors import ResolutionError
from pipelines.universe.refresh import refresh_universe
from pipelines.warehouse import create_engine_for, ensure_migrated, mask_url
from pipelines.warehouse.errors import WarehouseError
from proto_client.encryption import KeyFileError

COMMAND = "shortinterest watchlist"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="resolve and show the changes, write nothing")
    parser.add_argument(
        "--allow-shrink", action="store_true", help="accept a resolution that drops more than half of the watchlist"
    )
    parser.epilog = (
        "Reads SHORTINTEREST_WATCHLIST (codes, futu_groups, plates, markets, exclude), asks the first gateway "
        "(OPEND_GATEWAYS or OPEND_HOST/OPEND_PORT) within OPEND_LISTING_RATE_LIMIT, writes the securities "
        "table of SHORTINTEREST_DATABASE_URL."
    )


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s", stream=sys.stderr)
    try:
        settings = Settings.from_env()
        watchlist = load_watchlist(settings.watchlist_path)
        engine = create_engine_for(settings.database_url)
    except (ConfigError, WatchlistError, WarehouseError) as exc:
        return fail(COMMAND, str(exc), 2)
    try:
        ensure_migrated(engine)
        refresh = refresh_universe(settings, engine, watchlist, allow_shrink=args.allow_shrink, dry_run=args.dry_run)
    except KeyFileError as exc:
        return fail(COMMAND, f"OPEND_RSA_KEY_FILE: {exc}", 2)
    except (ResolutionError, WarehouseError) as exc:
        return fail(COMMAND, str(exc), 1)
    except sa.exc.SQLAlchemyError as exc:
        return fail(COMMAND, f"cannot use the warehouse {mask_url(engine.url)}: {first_line(exc)}", 1)
    finally:
        engine.dispose()
    resolution, change = refresh.resolution, refresh.change
    rows = [
        [m.code, m.name or "-", ", ".join(m.sources) + (" (delisted: not loaded)" if m.delisted else "")]
        for m in resolution.members
    ]
    print(f"watchlist {watchlist.source}: {len(resolution.codes)} codes to load, resolved in "
          f"{resolution.requests} requests")  # fmt: skip
    print(format_table(["code", "name", "sources"], rows))
    for title, moved in (("joined", change.joined), ("left", change.left)):
        print(f"\n{title} ({len(moved)}):" + "".join(f"\n  {m}" for m in moved) if moved else f"\n{title}: none")
    if resolution.excluded:
        print(f"\nexcluded ({len(resolution.excluded)}): {', '.join(resolution.excluded)}")
    if resolution.left_out:
        print(f"\nleft out, not served by the short-interest API ({len(resolution.left_out)}):")
        print("".join(f"  {line}\n" for line in resolution.left_out), end="")
    for note in resolution.notes:
        print(f"note: {note}")
    print("\ndry run: nothing was written" if args.dry_run else "\nwritten to the securities table")
    return 0
