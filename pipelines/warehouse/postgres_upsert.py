"""The PostgreSQL side of the upsert.

One statement decides insert vs update vs unchanged per row: ON CONFLICT ... DO UPDATE ... WHERE the stored
row IS DISTINCT FROM the new one, and RETURNING (xmax = 0) tells fresh inserts from updates. Rows are
written in key order, which is the lock order, so concurrent writers of one code queue instead of deadlocking.
Large batches go through COPY into a temporary table, which is several times faster than bound parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from pipelines.warehouse.schema import KEY_COLUMNS

# Up to this many rows, bound-parameter INSERTs beat creating a staging table.
COPY_THRESHOLD = 2_000
# Rows per multi-row INSERT: 1,000 rows x 9 columns stays far below PostgreSQL's 65,535 parameters.
INSERT_CHUNK = 1_000

_STAGE = "_shortinterest_upsert_stage"
_COPY_TYPES = {sa.String: "text", sa.Text: "text", sa.Date: "date", sa.BigInteger: "int8", sa.Double: "float8"}


def upsert_postgres(
    conn: sa.Connection, table: sa.Table, columns: Sequence[str], tuples: list[tuple[Any, ...]], now: datetime
) -> tuple[int, int]:
    """Write `tuples` (in `columns` order, keys unique); return (inserted, updated)."""
    if len(tuples) > COPY_THRESHOLD:
        return _upsert_via_copy(conn, table, columns, tuples, now)
    tuples = sorted(tuples, key=itemgetter(0, 1))
    inserted = updated = 0
    for start in range(0, len(tuples), INSERT_CHUNK):
        chunk = tuples[start : start + INSERT_CHUNK]
        records = [
            {**dict(zip(columns, values, strict=True)), "first_loaded_at": now, "updated_at": now} for values in chunk
        ]
        for (was_insert,) in conn.execute(_values_statement(table, columns, records)):
            if was_insert:
                inserted += 1
            else:
                updated += 1
    return inserted, updated


def _values_statement(table: sa.Table, columns: Sequence[str], records: list[dict[str, Any]]) -> sa.Insert:
    statement = pg_insert(table).values(records)
    value_names = [name for name in columns if name not in KEY_COLUMNS]
    return statement.on_conflict_do_update(
        index_elements=list(KEY_COLUMNS),
        set_={**{name: statement.excluded[name] for name in value_names}, "updated_at": statement.excluded.updated_at},
        where=sa.or_(*(table.c[name].is_distinct_from(statement.excluded[name]) for name in value_names)),
    ).returning(sa.literal_column("xmax = 0", sa.Boolean))


def _upsert_via_copy(
    conn: sa.Connection, table: sa.Table, columns: Sequence[str], tuples: list[tuple[Any, ...]], now: datetime
) -> tuple[int, int]:
    column_list = ", ".join(columns)
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {_STAGE}")
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {_STAGE} ON COMMIT DROP AS SELECT {column_list} FROM {table.name} WITH NO DATA"
    )
    cursor = conn.connection.cursor()
    try:
        with cursor.copy(f"COPY {_STAGE} ({column_list}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types([_copy_type(table.c[name]) for name in columns])
            for values in tuples:
                copy.write_row(values)
    finally:
        cursor.close()
    # Without statistics the planner guesses the stage is tiny and may pick a nested loop over a million rows.
    conn.exec_driver_sql(f"ANALYZE {_STAGE}")
    counts = conn.execute(sa.text(_merge_sql(table, columns)), {"now": now}).one()
    conn.exec_driver_sql(f"DROP TABLE {_STAGE}")
    return int(counts.inserted), int(counts.updated)


def _merge_sql(table: sa.Table, columns: Sequence[str]) -> str:
    """Skip identical rows up front (an anti-join), so a re-load neither writes nor locks them."""
    name = table.name
    values = [c for c in columns if c not in KEY_COLUMNS]
    stored = ", ".join(f"t.{c}" for c in values)
    staged = ", ".join(f"s.{c}" for c in values)
    excluded = ", ".join(f"EXCLUDED.{c}" for c in values)
    assignments = ", ".join(f"{c} = EXCLUDED.{c}" for c in values)
    column_list = ", ".join(columns)
    return f"""
        WITH changed AS (
            SELECT s.* FROM {_STAGE} s
              LEFT JOIN {name} t ON t.code = s.code AND t.trade_date = s.trade_date
             WHERE t.code IS NULL OR ({stored}) IS DISTINCT FROM ({staged})
        ), written AS (
            INSERT INTO {name} AS t ({column_list}, first_loaded_at, updated_at)
            SELECT {column_list}, CAST(:now AS TIMESTAMPTZ), CAST(:now AS TIMESTAMPTZ)
              FROM changed ORDER BY code, trade_date
            ON CONFLICT (code, trade_date) DO UPDATE
               SET {assignments}, updated_at = EXCLUDED.updated_at
             WHERE ({stored}) IS DISTINCT FROM ({excluded})
            RETURNING (xmax = 0) AS was_insert
        )
        SELECT count(*) FILTER (WHERE was_insert) AS inserted,
               count(*) FILTER (WHERE NOT was_insert) AS updated
          FROM written
    """


def _copy_type(column: sa.Column[Any]) -> str:
    for python_type, pg_type in _COPY_TYPES.items():
        if isinstance(column.type, python_type):
            return pg_type
    raise TypeError(f"no COPY type for {column.table.name}.{column.name} ({column.type})")
