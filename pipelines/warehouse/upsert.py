"""Revision-aware loading of short-interest rows: insert new keys, update changed rows, leave the rest alone.

One statement for both databases: INSERT ... ON CONFLICT (code, trade_date) DO UPDATE ... WHERE the stored
row IS DISTINCT FROM the new one, RETURNING what it wrote (on PostgreSQL the rows come as one array per
column, unnested, on SQLite as a VALUES list). A row it does not return was unchanged and is
neither written nor locked, so a re-load leaves `updated_at` alone. Of the rows it returns, PostgreSQL
says which were inserted (`xmax = 0`, exact under concurrent writers); on SQLite the page's stored keys
are read first, in the same transaction, which the engine begins IMMEDIATE: no other writer can come
in between. Rows are written in key order, the lock order, so concurrent writers of one code queue
instead of deadlocking. A new row gets its publication day (`published_on`) from the calendar the schedules
use; it is neither compared nor rewritten on conflict, so it never makes a revision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from pipelines.warehouse.schema import (
    AUDIT_COLUMNS,
    DATA_TABLES,
    KEY_COLUMNS,
    PUBLISHED_ON,
    UtcDateTime,
    table_for,
    value_columns,
)
from pipelines.warehouse.validation import checked_batch
from proto_client.publication import published_on
from proto_client.records import ShortInterestRow

# Table column -> attribute of the row dataclass, where the names differ.
_ATTRIBUTE_OF = {"source_timestamp": "timestamp"}
# Keys per stored-key lookup on SQLite: two parameters each, well below SQLite's limit of 32,766.
_KEYS_PER_LOOKUP = 1_000


@dataclass(frozen=True, slots=True)
class UpsertResult:
    """What one load did: every row of the batch is counted in exactly one field."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def __add__(self, other: UpsertResult) -> UpsertResult:
        if not isinstance(other, UpsertResult):
            return NotImplemented
        return UpsertResult(
            self.inserted + other.inserted, self.updated + other.updated, self.unchanged + other.unchanged
        )

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.unchanged


def upsert_rows(conn: sa.Connection, rows: Sequence[ShortInterestRow]) -> UpsertResult:
    """Load one market's rows inside the caller's transaction (so a page and its cursor commit together).

    Every row is checked first; an invalid one raises InvalidRowError before anything is written, and
    the caller's transaction stays usable.
    """
    if not rows:
        return UpsertResult()
    market, ordered = checked_batch(rows)
    table = table_for(market)
    names = (*KEY_COLUMNS, *value_columns(table))
    fields = [_ATTRIBUTE_OF.get(name, name) for name in names]
    published = [published_on(market, row.trade_date) for row in ordered]
    if conn.dialect.name == "postgresql":
        columns = {name: [getattr(row, field) for row in ordered] for name, field in zip(names, fields, strict=True)}
        columns[PUBLISHED_ON] = published
        written = conn.execute(_POSTGRES_UPSERTS[table.name], columns).all()
        inserted = sum(1 for row in written if row.inserted)
    else:
        records = [
            {**{name: getattr(row, field) for name, field in zip(names, fields, strict=True)}, PUBLISHED_ON: day}
            for row, day in zip(ordered, published, strict=True)
        ]
        stored = _stored_keys(conn, table, ordered)
        written = conn.execute(_upsert_statement(table, on_postgres=False), records).all()
        inserted = sum(1 for row in written if (row.code, row.trade_date) not in stored)
    return UpsertResult(inserted, len(written) - inserted, len(rows) - len(written))


def upsert_batch(engine: sa.Engine, rows: Sequence[ShortInterestRow]) -> UpsertResult:
    """`upsert_rows` in a transaction of its own."""
    with engine.begin() as conn:
        return upsert_rows(conn, rows)


def _upsert_statement(table: sa.Table, on_postgres: bool) -> sa.Insert:
    """PostgreSQL takes one array per column and unnests them into the rows, so the statement has as many
    parameters as the table has columns, whatever the page's size, and the driver converts it once, not per
    page; SQLite takes a VALUES list. The audit stamps come from the database's clock: PostgreSQL's
    transaction time, or for SQLite (which runs in this process) this process's, to the microsecond.
    """
    insert = postgresql.insert(table) if on_postgres else sqlite.insert(table)
    values = value_columns(table)
    source: postgresql.Insert | sqlite.Insert
    if on_postgres:
        names = (*KEY_COLUMNS, *values, PUBLISHED_ON)
        arrays = (sa.bindparam(name, type_=postgresql.ARRAY(table.c[name].type)) for name in names)
        page = sa.func.unnest(*arrays).table_valued(*names).render_derived(name="page")
        now: sa.ColumnElement[Any] = sa.func.current_timestamp()
        source = insert.from_select([*names, *AUDIT_COLUMNS], sa.select(*page.c, now, now))
    else:
        now = sa.literal(datetime.now(UTC), UtcDateTime())
        source = insert.values(first_loaded_at=now, updated_at=now)
    statement = source.on_conflict_do_update(
        index_elements=list(KEY_COLUMNS),
        set_={**{name: insert.excluded[name] for name in values}, "updated_at": insert.excluded.updated_at},
        where=sa.or_(*(table.c[name].is_distinct_from(insert.excluded[name]) for name in values)),
    )
    inserted = sa.literal_column("xmax = 0", sa.Boolean) if on_postgres else sa.null()
    return statement.returning(table.c.code, table.c.trade_date, inserted.label("inserted"))


# PostgreSQL's statement takes its stamps from the database's clock, so one per table serves every page; reusing
# it also spares SQLAlchemy working out a new statement's cache key for each page.
_POSTGRES_UPSERTS = {table.name: _upsert_statement(table, on_postgres=True) for table in DATA_TABLES.values()}


def _stored_keys(conn: sa.Connection, table: sa.Table, rows: Sequence[ShortInterestRow]) -> set[tuple[str, date]]:
    keys = [(row.code, row.trade_date) for row in rows]
    stored: set[tuple[str, date]] = set()
    for start in range(0, len(keys), _KEYS_PER_LOOKUP):
        chunk = keys[start : start + _KEYS_PER_LOOKUP]
        query = sa.select(table.c.code, table.c.trade_date).where(
            sa.tuple_(table.c.code, table.c.trade_date).in_(chunk)
        )
        stored.update((code, trade_date) for code, trade_date in conn.execute(query))
    return stored
