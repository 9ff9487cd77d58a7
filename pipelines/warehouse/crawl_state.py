"""The crawler's bookkeeping per security, kept apart from the data tables.

Every function works inside the caller's transaction, so progress is recorded atomically with the data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from pipelines.warehouse.schema import crawl_state
from proto_client.records import END_OF_DATA
from proto_client.security import parse_code

# Long tracebacks belong in the logs; the table keeps enough to see what went wrong.
MAX_ERROR_LENGTH = 4_000


@dataclass(frozen=True, slots=True)
class CrawlState:
    code: str
    market: str
    newest_trade_date: date | None
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    full_crawl_cursor: str | None
    full_crawl_started_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    last_gateway: str | None


def get_crawl_state(conn: sa.Connection, code: str) -> CrawlState | None:
    row = conn.execute(sa.select(crawl_state).where(crawl_state.c.code == code)).one_or_none()
    return None if row is None else CrawlState(**row._mapping)


def list_crawl_states(conn: sa.Connection) -> list[CrawlState]:
    rows = conn.execute(sa.select(crawl_state).order_by(crawl_state.c.code))
    return [CrawlState(**row._mapping) for row in rows]


def forget_crawl_states(conn: sa.Connection, codes: Iterable[str]) -> int:
    """Delete the crawl state of `codes` (their rows stay); returns how many states there were."""
    wanted = sorted(set(codes))
    if not wanted:
        return 0
    return conn.execute(sa.delete(crawl_state).where(crawl_state.c.code.in_(wanted))).rowcount


def mark_attempt(conn: sa.Connection, code: str) -> CrawlState:
    """Record that a crawl of `code` starts; returns the code's state, which a crawl plans from."""
    row = _write(conn, code, {"last_attempt_at": _now()}, returning=True)
    assert row is not None  # an upsert returns its row
    return CrawlState(**row._mapping)


def save_cursor(conn: sa.Connection, code: str, next_key: str | None) -> None:
    """Remember where an interrupted full crawl resumes; None (or the end-of-data key) ends it."""
    if next_key is None or next_key == END_OF_DATA:
        _write(conn, code, {"full_crawl_cursor": None, "full_crawl_started_at": None})
        return
    if not isinstance(next_key, str) or not next_key:
        raise ValueError(f"cursor for {code} must be a non-empty page key, got {next_key!r}")
    # The start time is that of the crawl's first saved page; later pages keep it.
    _write(
        conn,
        code,
        {"full_crawl_cursor": next_key, "full_crawl_started_at": _now()},
        fill_only=("full_crawl_started_at",),
    )


def mark_success(conn: sa.Connection, code: str, newest_trade_date: date | None, gateway: str | None = None) -> None:
    """Record a clean crawl (by `gateway`): clear the last error and the resume cursor, since the crawl is
    complete. None keeps the date or gateway known."""
    values = {
        "last_success_at": _now(),
        "newest_trade_date": newest_trade_date,
        "last_error": None,
        "last_error_at": None,
        "last_gateway": gateway,
        "full_crawl_cursor": None,
        "full_crawl_started_at": None,
    }
    _write(conn, code, values, ignore_null=("newest_trade_date", "last_gateway"))


def mark_error(conn: sa.Connection, code: str, message: str) -> None:
    text = str(message)
    if len(text) > MAX_ERROR_LENGTH:
        text = text[: MAX_ERROR_LENGTH - 1] + "…"
    _write(conn, code, {"last_error": text, "last_error_at": _now()})


def _write(
    conn: sa.Connection,
    code: str,
    values: dict[str, Any],
    *,
    fill_only: tuple[str, ...] = (),
    ignore_null: tuple[str, ...] = (),
    returning: bool = False,
) -> sa.Row[Any] | None:
    """Insert the code's state or update the given fields; with `returning`, the row as written.

    `fill_only` fields are written only where the stored value is NULL; `ignore_null` fields are not
    overwritten by a NULL.
    """
    market = parse_code(code).market.prefix
    statement = _upsert(conn.dialect.name, tuple(values), fill_only, ignore_null, returning)
    result = conn.execute(statement, {"code": code, "market": market, **values})
    return result.one() if returning else None


@cache
def _upsert(
    dialect: str, names: tuple[str, ...], fill_only: tuple[str, ...], ignore_null: tuple[str, ...], returning: bool
) -> sa.Insert:
    """The upsert of `_write`, built once per shape: building it costs more than running it. The values are
    bound at execution (an insert without values takes its columns from the parameters)."""
    statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(crawl_state)
    assignments: dict[str, Any] = {name: statement.excluded[name] for name in names}
    for name in fill_only:
        assignments[name] = sa.func.coalesce(crawl_state.c[name], statement.excluded[name])
    for name in ignore_null:
        assignments[name] = sa.func.coalesce(statement.excluded[name], crawl_state.c[name])
    upsert = statement.on_conflict_do_update(index_elements=[crawl_state.c.code], set_=assignments)
    return upsert.returning(*crawl_state.c) if returning else upsert


def _now() -> datetime:
    return datetime.now(UTC)
