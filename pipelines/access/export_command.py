"""`shortinterest export [CODE ...] --format csv|parquet|json [-o FILE]`: stored history out of the warehouse.

Everything that can be refused is refused before the first query: malformed codes and dates by name, and an
output path that cannot be written. Rows stream from a server-side cursor into the writer chunk by chunk, so
memory stays flat however many rows there are. A file appears only when the export completed: rows go to a
temporary file beside it that replaces it at the end. Requested codes with no stored rows are named in a
warning; when nothing at all matched, no file is written and the exit status is 1. With `--as-of`, the rows
are the warehouse as it was known then (pipelines/warehouse/as_of.py), with three more columns.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import IO

import sqlalchemy as sa

from pipelines.access.export_formats import FORMATS, ChunkWriter, CsvWriter, JsonWriter, ParquetWriter
from pipelines.arguments import trade_date
from pipelines.config import ConfigError, Settings
from pipelines.crawl.watchlist import normalize_entry
from pipelines.failures import fail, first_line
from pipelines.warehouse import WarehouseError, create_engine_for, mask_url
from pipelines.warehouse.as_of import AsOfError, as_of_moment
from pipelines.warehouse.read import iter_short_interest_frames
from proto_client.errors import InvalidCodeError

COMMAND = "shortinterest export"
EXIT_NOTHING = 1  # nothing matched, or the warehouse cannot be read
EXIT_USAGE = 2  # bad codes, dates or output path: nothing was queried


class ExportError(Exception):
    """Input the export refuses before querying; the message names the bad value."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "codes", nargs="*", metavar="CODE", help="codes to export, e.g. US.AAPL HK.00700 (default: all)"
    )
    parser.add_argument("--since", type=trade_date, metavar="DATE", help="first trade date to export, YYYY-MM-DD")
    parser.add_argument("--until", type=trade_date, metavar="DATE", help="last trade date to export, YYYY-MM-DD")
    parser.add_argument(
        "--as-of",
        type=_as_of,
        metavar="DATE|TIMESTAMP",
        help="the warehouse as known then: reports published by then, with the values held then (a date means "
        "its end in UTC; a timestamp without a zone is UTC)",
    )
    parser.add_argument("--format", choices=FORMATS, required=True, help="csv, parquet or json (an array of rows)")
    parser.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="write here (default stdout; parquet needs it)"
    )
    parser.epilog = "Reads SHORTINTEREST_DATABASE_URL; sends nothing to the gateway."


def run(args: argparse.Namespace) -> int:
    try:
        codes = _checked_codes(args.codes)
        if args.since and args.until and args.since > args.until:
            raise ExportError(f"--since {args.since} is after --until {args.until}")
        if args.format == "parquet" and args.output is None:
            raise ExportError("parquet is binary: give an output file with -o FILE")
        settings = Settings.from_env()
        engine = create_engine_for(settings.database_url)
    except (ExportError, ConfigError, WarehouseError) as exc:
        return fail(COMMAND, str(exc), EXIT_USAGE)
    try:
        with _destination(args.output) as (stream, path):
            writer = _writer(args.format, stream, path)
            rows, found = 0, set[str]()
            chunks = iter_short_interest_frames(engine, codes or None, args.since, args.until, as_of=args.as_of)
            for chunk in chunks:
                writer.write(chunk)
                rows += len(chunk)
                found.update(chunk["code"].unique())
            writer.close()
            if rows == 0:
                request = _request(codes, args.since, args.until) + (f" as of {args.as_of}" if args.as_of else "")
                raise ExportError(f"nothing matched {request} in the warehouse")
    except ExportError as exc:
        return fail(COMMAND, str(exc), EXIT_NOTHING)
    except BrokenPipeError:
        # The reader of stdout stopped early (`| head`): nothing to report; keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_NOTHING
    except OSError as exc:
        return fail(COMMAND, f"cannot write {args.output or 'to stdout'}: {exc.strerror or exc}", EXIT_USAGE)
    except (WarehouseError, sa.exc.SQLAlchemyError) as exc:
        return fail(COMMAND, f"cannot read the warehouse {mask_url(engine.url)}: {first_line(exc)}", EXIT_NOTHING)
    finally:
        engine.dispose()
    missing = [code for code in codes if code not in found]
    if missing:
        print(f"shortinterest export: warning: no stored rows for {', '.join(missing)}", file=sys.stderr)
    if args.output is not None:
        print(f"exported {rows} rows to {args.output}", file=sys.stderr)
    return 0


def _as_of(text: str) -> datetime:
    try:
        return as_of_moment(text)
    except AsOfError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _checked_codes(codes: list[str]) -> list[str]:
    """The codes in canonical form (read as `load` and the watchlist read them), or every bad one named."""
    bad, good = [], []
    for code in codes:
        try:
            good.append(normalize_entry(code)[0])
        except InvalidCodeError as exc:
            bad.append(str(exc))
    if bad:
        raise ExportError("; ".join(bad) + "; nothing was exported")
    return list(dict.fromkeys(good))


def _request(codes: list[str], since: date | None, until: date | None) -> str:
    what = ", ".join(codes) if codes else "any code"
    return what + (f" from {since}" if since else "") + (f" until {until}" if until else "")


@contextmanager
def _destination(output: Path | None) -> Iterator[tuple[IO[str] | None, Path | None]]:
    """(text stream, path) to write to: stdout, or a temporary file beside `output` that replaces it on success.

    Creating the temporary file up front is the check that `output` can be written, made before any query.
    """
    if output is None:
        yield sys.stdout, None
        return
    if output.is_dir():
        raise OSError(f"{output} is a directory")
    fd, temp_name = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".partial")
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as stream:
            yield stream, temp
        os.replace(temp, output)
    finally:
        temp.unlink(missing_ok=True)


def _writer(fmt: str, stream: IO[str] | None, path: Path | None) -> ChunkWriter:
    if fmt == "parquet":
        assert path is not None
        return ParquetWriter(path)
    assert stream is not None
    return CsvWriter(stream) if fmt == "csv" else JsonWriter(stream)
