"""Revision-aware loading of short-interest rows: insert new keys, update changed rows, leave the rest alone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from pipelines.warehouse.bulk_columns import key_sorted_batch
from pipelines.warehouse.postgres_upsert import COPY_THRESHOLD, copy_types, upsert_postgres, upsert_postgres_bulk
from pipelines.warehouse.schema import KEY_COLUMNS, table_for, value_columns
from pipelines.warehouse.sqlite_upsert import upsert_sqlite
from pipelines.warehouse.validation import market_of_batch, sorted_valid_tuples
from proto_client.records import ShortInterestRow

# Table column -> attribute of the row dataclass, where the names differ.
_ATTRIBUTE_OF = {"source_timestamp": "timestamp"}


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

    Every row is validated first; an invalid one raises InvalidRowError before anything is written.
    """
    if not rows:
        return UpsertResult()
    market = market_of_batch(rows)
    table = table_for(market)
    columns = (*KEY_COLUMNS, *value_columns(table))
    fields = tuple(_ATTRIBUTE_OF.get(name, name) for name in columns)
    # Key order is the lock order: concurrent writers of one code then queue instead of deadlocking.
    if conn.dialect.name != "postgresql":
        tuples = sorted_valid_tuples(rows, fields, market)
        inserted, updated = upsert_sqlite(conn, table, columns, tuples, datetime.now(UTC))
    elif len(rows) > COPY_THRESHOLD:
        batch = key_sorted_batch(rows, fields, copy_types(table, columns), market)
        inserted, updated = upsert_postgres_bulk(conn, table, columns, batch)
    else:
        inserted, updated = upsert_postgres(conn, table, columns, sorted_valid_tuples(rows, fields, market))
    return UpsertResult(inserted, updated, len(rows) - inserted - updated)


def upsert_batch(engine: sa.Engine, rows: Sequence[ShortInterestRow]) -> UpsertResult:
    """`upsert_rows` in a transaction of its own."""
    with engine.begin() as conn:
        return upsert_rows(conn, rows)
