"""Stored history as DataFrames for analysts who do not write SQL: `market`, `code`, `trade_date`, then the API's
names for the markets read, then the security's `name` (from the securities table; empty for a code never
resolved), ordered by market, code, date, in fixed dtypes so every chunk has one schema.

Read as of a moment (pipelines/warehouse/as_of.py), the rows are the reports known then with the values held
then, and three columns follow: `published_on`, `version_recorded_at` and `backfilled`."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime

import pandas as pd
import sqlalchemy as sa

from pipelines.config import Settings
from pipelines.warehouse.as_of import BACKFILLED, RECORDED_AT, as_of_moment, held_as_of
from pipelines.warehouse.engine import create_engine_for, read_connection
from pipelines.warehouse.migrate import ensure_migrated
from pipelines.warehouse.schema import PUBLISHED_ON, securities, table_for
from proto_client.frames import COLUMNS
from proto_client.security import Market, parse_code

READ_CHUNK_ROWS = 20_000
_COUNTS = frozenset({"shares_short", "avg_daily_share_volume", "aggregated_short"})
AS_OF_COLUMNS = (PUBLISHED_ON, RECORDED_AT, BACKFILLED)
NAME = "name"


def frame_columns(markets: Sequence[Market], *, as_of: bool = False) -> list[str]:
    names = ["market", "code", "trade_date"]
    for market in markets:
        names += [c for c in COLUMNS[market] if not c.startswith("timestamp") and c not in names]
    return [*names, NAME, *AS_OF_COLUMNS] if as_of else [*names, NAME]


def markets_for(codes: Iterable[str] | None = None, market: Market | str | None = None) -> list[Market]:
    """The markets a read covers: those of `codes` (all if None), narrowed to `market`; malformed codes raise."""
    only = Market.__members__.get(market, market) if isinstance(market, str) else market
    if isinstance(only, str):
        raise ValueError(f"market {market!r} is not one of {', '.join(Market.__members__)}")
    wanted = {parse_code(code).market for code in codes} if codes is not None else set(Market)
    return sorted((m for m in wanted if only is None or m is only), key=lambda m: m.prefix)


def _frame(rows: Sequence[Sequence[object]], market: Market, columns: list[str]) -> pd.DataFrame:
    # Rows hold the table's columns (and the as-of ones) as selected, then the name joined from securities.
    names = [c for c in columns[1:] if c in table_for(market).c or c in AS_OF_COLUMNS] + [NAME]
    frame = pd.DataFrame(dict(zip(names, zip(*rows, strict=True), strict=True)) if rows else dict.fromkeys(names, ()))
    frame.insert(0, "market", market.prefix)
    dtypes = {c: "Int64" if c in _COUNTS else "float64" for c in columns[3:] if c not in (NAME, *AS_OF_COLUMNS)}
    frame = frame.reindex(columns=columns).astype({"market": "str", "code": "str", NAME: "string", **dtypes})
    if PUBLISHED_ON in columns:
        as_of: dict[str, pd.Series] = {
            PUBLISHED_ON: pd.to_datetime(frame[PUBLISHED_ON]).astype("datetime64[ns]"),
            RECORDED_AT: pd.to_datetime(frame[RECORDED_AT], utc=True).astype("datetime64[ns, UTC]"),
            BACKFILLED: frame[BACKFILLED].astype("bool"),
        }
        frame = frame.assign(**as_of)
    return frame.assign(trade_date=pd.to_datetime(frame["trade_date"]).astype("datetime64[ns]"))


def iter_short_interest_frames(
    engine: sa.Engine,
    codes: Iterable[str] | None = None,
    since: date | str | None = None,
    until: date | str | None = None,
    market: Market | str | None = None,
    *,
    as_of: date | datetime | str | None = None,
    chunk_rows: int = READ_CHUNK_ROWS,
) -> Iterator[pd.DataFrame]:
    """read_short_interest's rows in frames of at most `chunk_rows` (none if nothing matched), from a server-side
    cursor so memory stays flat however many rows there are."""
    codes = None if codes is None else list(dict.fromkeys(codes))
    moment = None if as_of is None else as_of_moment(as_of)
    columns = frame_columns(markets := markets_for(codes, market), as_of=moment is not None)
    first, last = (date.fromisoformat(d) if isinstance(d, str) else d for d in (since, until))
    ensure_migrated(engine)
    with read_connection(engine) as conn:
        for m in markets:
            table: sa.Table | sa.Subquery = table_for(m) if moment is None else held_as_of(m, moment)
            where = [table.c.trade_date >= first] if first else []
            where += [table.c.trade_date <= last] if last else []
            where += [table.c.code.in_([c for c in codes if parse_code(c).market is m])] if codes is not None else []
            selected = [table.c[c] for c in columns[1:] if c in table.c] + [securities.c.name]
            query = (
                sa.select(*selected)
                .outerjoin(securities, securities.c.code == table.c.code)
                .where(*where)
                .order_by(table.c.code, table.c.trade_date)
            )
            result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(query)
            for part in result.partitions():
                yield _frame(part, m, columns)


def read_short_interest(
    codes: Iterable[str] | None = None,
    since: date | str | None = None,
    until: date | str | None = None,
    market: Market | str | None = None,
    *,
    as_of: date | datetime | str | None = None,
    engine: sa.Engine | None = None,
) -> pd.DataFrame:
    """Stored rows of `codes` (default all) from `since` to `until` (inclusive), one market or both, from
    `engine` or else the warehouse at SHORTINTEREST_DATABASE_URL; a warning names requested codes without rows.

    With `as_of` (a date: the end of that day in UTC; or a timestamp), the reports known then with the values
    held then, and `published_on`, `version_recorded_at` and `backfilled` after the API's columns."""
    codes = None if codes is None else list(codes)
    source = create_engine_for(Settings.from_env().database_url) if engine is None else engine
    try:
        frames = list(iter_short_interest_frames(source, codes, since, until, market, as_of=as_of))
    finally:
        if engine is None:
            source.dispose()
    empty = frame_columns(markets_for(codes, market), as_of=as_of is not None)
    frames = frames or [_frame([], Market.HK, empty)]
    frame, stored = pd.concat(frames, ignore_index=True), set().union(*(f["code"] for f in frames))
    if missing := [code for code in dict.fromkeys(codes or ()) if code not in stored]:
        warnings.warn(f"no stored rows for {', '.join(missing)}", UserWarning, stacklevel=2)
    return frame
