"""The first large load into an empty table: COPY without the primary-key index, then build it in one pass.

Maintaining the key's B-tree row by row (a WAL record per key) costs the server about as much again as
storing the rows; building it afterwards from the stored rows costs a fraction of that. This is
PostgreSQL's own advice for populating a table, taken only where it is safe:
  * the batch is large (INITIAL_LOAD_MIN_ROWS), so nobody waits on the table for a load that gains little;
  * the table's ACCESS EXCLUSIVE lock is free right now (NOWAIT: never queue behind, nor deadlock with,
    another session); readers and writers of this table then wait until the caller's transaction ends;
  * once locked, the table holds no row at all, so the rebuilt key sees only this batch, which is unique.
Anything else (lock taken, rows present, not the table's owner, an object depending on the key) rolls
back to the savepoint, releasing the lock, and the caller takes the row-by-row-indexed path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import psycopg.errors
import sqlalchemy as sa

from pipelines.warehouse.bulk_columns import KeySortedBatch

# Below this many rows the ordinary COPY is fast enough that locking the table is not worth it.
INITIAL_LOAD_MIN_ROWS = 50_000
# For building the key index only: enough sort memory to build a million-row index without spilling.
INDEX_BUILD_SETTINGS = {"maintenance_work_mem": "256MB"}

_DECLINED = (
    psycopg.errors.LockNotAvailable,
    psycopg.errors.InsufficientPrivilege,
    psycopg.errors.DependentObjectsStillExist,
    psycopg.errors.UniqueViolation,  # rows committed after a REPEATABLE READ snapshot: the key index sees them
)

Copier = Callable[[sa.Connection, str, Sequence[str], KeySortedBatch], None]


class _TableNotEmpty(Exception):
    """Internal: roll back to the savepoint (releasing the lock) because the table has rows."""


def copy_into_empty_table(
    conn: sa.Connection, table: sa.Table, columns: Sequence[str], batch: KeySortedBatch, copy: Copier
) -> bool:
    """COPY `batch` into `table` if it is empty and may be locked; False (nothing written) if not."""
    if len(batch) < INITIAL_LOAD_MIN_ROWS or table.primary_key.name is None:
        return False
    key = table.primary_key.name
    try:
        with conn.begin_nested():
            conn.exec_driver_sql(f"LOCK TABLE {table.name} IN ACCESS EXCLUSIVE MODE NOWAIT")
            if conn.execute(sa.select(sa.exists().select_from(table))).scalar_one():
                raise _TableNotEmpty
            definition = conn.execute(
                sa.text(
                    "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conrelid = CAST(:table AS regclass) AND conname = :key"
                ),
                {"table": table.name, "key": key},
            ).scalar_one()
            conn.exec_driver_sql(f"ALTER TABLE {table.name} DROP CONSTRAINT {key}")
            copy(conn, table.name, columns, batch)
            saved = {
                name: conn.exec_driver_sql("SELECT current_setting(%s)", (name,)).scalar_one()
                for name in INDEX_BUILD_SETTINGS
            }
            for name, value in INDEX_BUILD_SETTINGS.items():
                conn.exec_driver_sql("SELECT set_config(%s, %s, true)", (name, value))
            conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD CONSTRAINT {key} {definition}")
            for name, value in saved.items():
                conn.exec_driver_sql("SELECT set_config(%s, %s, true)", (name, value))
    except _TableNotEmpty:
        return False
    except sa.exc.DBAPIError as exc:
        if isinstance(exc.orig, _DECLINED):
            return False
        raise
    return True
