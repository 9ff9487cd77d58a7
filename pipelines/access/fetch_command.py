"""`shortinterest fetch CODE`: one live page (or the whole history) from the gateway, printed like the API page.

Nothing is stored. The request books its turn in the warehouse's shared rate limiter when the warehouse at
SHORTINTEREST_DATABASE_URL is set up (so a fetch never pushes running loads past the account's budget), and in
a limiter of its own at OPEND_RATE_LIMIT otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from pipelines.access.live import quote_context
from pipelines.config import ConfigError, Settings
from pipelines.crawl.watchlist import normalize_entry
from pipelines.failures import fail
from pipelines.warehouse import WarehouseError, create_engine_for, ensure_migrated
from pipelines.warehouse.engine import normalize_url
from proto_client.encryption import KeyFileError
from proto_client.errors import InvalidCodeError, OpenDError
from proto_client.messages import MAX_PAGE_SIZE
from proto_client.quote_context import DEFAULT_NUM, RET_OK
from proto_client.security import parse_code

COMMAND = "shortinterest fetch"
EXIT_FAILED = 1
EXIT_USAGE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("code", metavar="CODE", help="e.g. US.AAPL or HK.00700")
    parser.add_argument(
        "--num", type=_page_size, help=f"rows on the page, 1 to {MAX_PAGE_SIZE} (default {DEFAULT_NUM})"
    )
    parser.add_argument(
        "--next-key", metavar="K", help="the next_key a previous fetch printed: fetch the page after it"
    )
    parser.add_argument("--all", action="store_true", help=f"the whole history, {MAX_PAGE_SIZE} rows a request")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output (default table)")
    parser.epilog = (
        "Gateway: OPEND_HOST/OPEND_PORT; requests stay within OPEND_RATE_LIMIT. With csv, the next_key goes to "
        "stderr so stdout is the data alone."
    )


def _page_size(text: str) -> int:
    try:
        num = int(text)
    except ValueError:
        num = 0
    if not 1 <= num <= MAX_PAGE_SIZE:
        raise argparse.ArgumentTypeError(f"{text!r} is not a page size from 1 to {MAX_PAGE_SIZE}")
    return num


def run(args: argparse.Namespace) -> int:
    try:
        security = parse_code(normalize_entry(args.code)[0])
    except InvalidCodeError as exc:
        return fail(COMMAND, str(exc), EXIT_USAGE)
    if args.all and (args.num is not None or args.next_key is not None):
        return fail(COMMAND, "--all reads every page at 50 rows a request: drop --num and --next-key", EXIT_USAGE)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        return fail(COMMAND, str(exc), EXIT_USAGE)
    engine = _ready_warehouse(settings)
    try:
        with quote_context(settings, engine) as ctx:
            if args.all:
                frame, next_key = ctx.get_short_interest_history(security.code), "-1"
            else:
                ret, us_df, hk_df = ctx.get_short_interest(security.code, args.next_key, args.num)
                if ret != RET_OK or isinstance(us_df, str) or hk_df is None:
                    return fail(COMMAND, f"{security.code}: {us_df}", EXIT_FAILED)
                frame = hk_df if security.market.prefix == "HK" else us_df
                next_key = frame.attrs["next_key"]
    except KeyFileError as exc:
        return fail(COMMAND, f"OPEND_RSA_KEY_FILE: {exc}", EXIT_USAGE)
    except OpenDError as exc:
        return fail(COMMAND, f"{security.code}: {exc}", EXIT_FAILED)
    finally:
        if engine is not None:
            engine.dispose()
    _print(frame, next_key, security.code, args.format)
    return 0


def _ready_warehouse(settings: Settings) -> sa.Engine | None:
    """The warehouse, if it exists and is at the latest schema: then its shared rate limiter is the one to use."""
    try:
        url = normalize_url(settings.database_url)
        if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
            return None  # do not create a warehouse just to fetch a page
        engine = create_engine_for(settings.database_url)
    except WarehouseError:
        return None
    try:
        ensure_migrated(engine)
    except (WarehouseError, sa.exc.SQLAlchemyError):
        engine.dispose()
        return None
    return engine


def _print(frame: pd.DataFrame, next_key: str, code: str, fmt: str) -> None:
    out = sys.stdout
    if fmt == "table":
        print(frame.to_string(), file=out)
        print(f"next_key: {next_key}", file=out)
    elif fmt == "csv":
        frame.to_csv(out, index=False)
        print(f"next_key: {next_key}", file=sys.stderr)
    else:
        rows = json.loads(frame.to_json(orient="records"))
        json.dump({"code": code, "next_key": next_key, "rows": rows}, out, indent=1)
        print(file=out)
