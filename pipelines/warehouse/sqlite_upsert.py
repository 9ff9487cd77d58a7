"""The SQLite side of the upsert: compare against the stored rows, then write only what changed.

The engine begins every transaction with BEGIN IMMEDIATE, so the read and the write below see the same
data: no other process can write in between.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from pipelines.warehouse.schema import KEY_COLUMNS


def upsert_sqlite(
    conn: sa.Connection, table: sa.Table, columns: Sequence[str], tuples: list[tuple[Any, ...]], now: datetime
) -> tuple[int, int]:
    """Write `tuples` (sorted by key); return (inserted, updated)."""
    stored = _stored_values(conn, table, columns, tuples)
    inserted = updated = 0
    to_write: list[dict[str, Any]] = []
    for values in tuples:
        previous = stored.get((values[0], values[1]))
        if previous is None:
            inserted += 1
        elif previous != values[2:]:
            updated += 1
        else:
            continue
        record = dict(zip(columns, values, strict=True))
        record["first_loaded_at"] = now
        record["updated_at"] = now
        to_write.append(record)
    if to_write:
        conn.execute(_upsert_statement(table, columns), to_write)
    return inserted, updated


def _stored_values(
    conn: sa.Connection, table: sa.Table, columns: Sequence[str], tuples: list[tuple[Any, ...]]
) -> dict[tuple[str, date], tuple[Any, ...]]:
    spans: dict[str, tuple[date, date]] = {}
    for code, trade_date, *_ in tuples:
        low, high = spans.get(code, (trade_date, trade_date))
        spans[code] = (min(low, trade_date), max(high, trade_date))
    query = sa.select(*(table.c[name] for name in columns)).where(
        table.c.code == sa.bindparam("code"),
        table.c.trade_date.between(sa.bindparam("low"), sa.bindparam("high")),
    )
    stored: dict[tuple[str, date], tuple[Any, ...]] = {}
    for code, (low, high) in spans.items():
        for row in conn.execute(query, {"code": code, "low": low, "high": high}):
            stored[(row[0], row[1])] = tuple(row[2:])
    return stored


def _upsert_statement(table: sa.Table, columns: Sequence[str]) -> sa.Insert:
    statement = sqlite_insert(table)
    value_names = [name for name in columns if name not in KEY_COLUMNS]
    return statement.on_conflict_do_update(
        index_elements=list(KEY_COLUMNS),
        set_={**{name: statement.excluded[name] for name in value_names}, "updated_at": statement.excluded.updated_at},
        where=sa.or_(*(table.c[name].is_distinct_from(statement.excluded[name]) for name in value_names)),
    )
