"""`shortinterest chart CODE [CODE ...] [--since DATE] -o FILE.png`: short interest against the price.

Reads the warehouse only; codes are checked and the output path is tried before any query, so a typo
costs nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import sqlalchemy as sa

from pipelines.analysis.series import read_series
from pipelines.arguments import trade_date
from pipelines.config import ConfigError, Settings
from pipelines.crawl.watchlist import normalize_entry
from pipelines.failures import fail, first_line
from pipelines.warehouse import create_engine_for, ensure_migrated, mask_url, read_connection
from pipelines.warehouse.errors import WarehouseError
from proto_client.errors import InvalidCodeError

EXIT_NO_DATA = 1
EXIT_USAGE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("codes", nargs="+", metavar="CODE", help="codes to draw, one panel each (US.AAPL HK.00700)")
    parser.add_argument("--since", type=trade_date, metavar="DATE", help="first trade date to draw (YYYY-MM-DD)")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="FILE.png", help="where to write the PNG")
    parser.epilog = "Reads SHORTINTEREST_DATABASE_URL; sends nothing to the gateway."


def run(args: argparse.Namespace) -> int:
    try:
        codes = list(dict.fromkeys(normalize_entry(code)[0] for code in args.codes))
    except InvalidCodeError as exc:
        return _fail(str(exc), EXIT_USAGE)
    output: Path = args.output
    if output.suffix.lower() != ".png":
        return _fail(f"output {output} must end in .png", EXIT_USAGE)
    if not output.parent.is_dir():
        return _fail(f"cannot write {output}: directory {output.parent} does not exist", EXIT_USAGE)
    try:
        settings = Settings.from_env()
        engine = create_engine_for(settings.database_url)
    except (ConfigError, WarehouseError) as exc:
        return _fail(str(exc), EXIT_USAGE)
    try:
        ensure_migrated(engine)
        with read_connection(engine) as conn:
            series = [read_series(conn, code, since=args.since) for code in codes]
    except WarehouseError as exc:
        return _fail(str(exc), EXIT_NO_DATA)
    except sa.exc.SQLAlchemyError as exc:
        return _fail(f"cannot read warehouse {mask_url(engine.url)}: {first_line(exc)}", EXIT_NO_DATA)
    finally:
        engine.dispose()
    empty = [s.code for s in series if not s.dates]
    if len(empty) == len(series):
        since = f" since {args.since}" if args.since else ""
        return _fail(f"no stored rows{since} for {', '.join(empty)}; nothing drawn", EXIT_NO_DATA)
    for code in empty:
        print(f"shortinterest chart: warning: no stored rows for {code}; its panel says so", file=sys.stderr)
    from pipelines.analysis.chart import draw, save_png  # matplotlib loads only when there is something to draw

    try:
        save_png(draw(series), output)
    except OSError as exc:
        return _fail(f"cannot write {output}: {exc.strerror or exc}", EXIT_USAGE)
    print(f"wrote {output}: {len(series)} panel(s), {sum(len(s) for s in series)} reports")
    return 0


def _fail(message: str, status: int) -> int:
    return fail("shortinterest chart", message, status)
