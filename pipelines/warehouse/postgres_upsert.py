"""The PostgreSQL side of the upsert.

Small batches (a crawler page) use one multi-row INSERT ... ON CONFLICT DO UPDATE ... WHERE the stored row
IS DISTINCT FROM the new one, with RETURNING (xmax = 0) telling fresh inserts from updates.

Large batches (backfills, above COPY_THRESHOLD rows) arrive as numpy columns and travel as binary COPY,
avoiding bound parameters and speculative insertion, which cost more than the data:
  * codes with no stored rows at all are COPYed straight into the table under a savepoint; should a
    concurrent writer insert one of those keys first, the savepoint is rolled back and the rows take the
    general path instead;
  * for everything else, the stored rows of those keys are read back while the batch is validated, and
    rows identical to them are counted as unchanged without being sent (`stored_columns`); the rest is
    COPYed into a temporary table, identical rows are dropped by one anti-join (so a re-load neither
    writes nor locks them), and what remains is inserted or updated in one statement.

Rows arrive sorted by key and are written in that order, which is the lock order, so concurrent writers of
one code queue behind each other instead of deadlocking.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg.errors
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from pipelines.warehouse.binary_copy import (
    CopyColumn,
    PgType,
    binary_copy_stream,
    concatenate_columns,
    select_rows,
    split_rows,
)
from pipelines.warehouse.bulk_columns import ROWS_PER_CHUNK, KeySortedBatch
from pipelines.warehouse.initial_load import copy_into_empty_table
from pipelines.warehouse.schema import KEY_COLUMNS
from pipelines.warehouse.stored_columns import start_reading_stored_columns, unchanged_rows

# Up to this many rows, bound-parameter INSERTs beat the COPY machinery.
COPY_THRESHOLD = 2_000
# Rows per multi-row INSERT: 1,000 rows x 9 columns stays far below PostgreSQL's 65,535 parameters.
INSERT_CHUNK = 1_000
# Settings for the merge statement only (restored after it, as the transaction is the caller's):
#   * sort memory, so a million-row join does not spill to disk;
#   * no JIT, whose compilation of the merge costs about as long as a third of a million-row re-load;
#   * no hash join: the stage arrives in key order, so sorting it is one cheap pass, and a merge join
#     against the primary key's index compares a million rows in about half the time of hashing either
#     side (the planner prices that sort as a full one, so it would pick the hash); small stages still
#     get index probes (nested loop).
MERGE_SETTINGS = {"work_mem": "256MB", "jit": "off", "enable_hashjoin": "off"}
# For reading stored rows back: JIT compilation would cost more than the query over a million rows.
READBACK_SETTINGS = {"jit": "off"}

_STAGE = "_shortinterest_upsert_stage"
_COPY_TYPES: dict[type[sa.types.TypeEngine[Any]], PgType] = {
    sa.String: "text",
    sa.Text: "text",
    sa.Date: "date",
    sa.BigInteger: "int8",
    sa.Double: "float8",
}


def upsert_postgres(
    conn: sa.Connection, table: sa.Table, columns: Sequence[str], tuples: list[tuple[Any, ...]]
) -> tuple[int, int]:
    """Write a small batch of `tuples` (in `columns` order, sorted by key, keys unique); return (inserted, updated).

    Audit stamps come from the server's transaction time, the clock the column defaults use on the COPY
    path, so first_loaded_at <= updated_at holds whatever the client's clock says.
    """
    return _upsert_with_values(conn, table, columns, tuples, _server_now(conn))


def upsert_postgres_bulk(
    conn: sa.Connection, table: sa.Table, columns: Sequence[str], batch: KeySortedBatch
) -> tuple[int, int]:
    """Write a large batch whose fields are `columns`; its rows are validated as they stream.

    Runs under a savepoint, so should a row fail validation after part of the batch was sent, the whole
    batch is undone before InvalidRowError reaches the caller.
    """
    with conn.begin_nested():
        now = _server_now(conn)
        fresh = _rows_of_unstored_codes(conn, table, batch)
        if fresh.all() and copy_into_empty_table(conn, table, columns, batch, _copy):
            return len(fresh), 0
        if fresh.any():
            everything = bool(fresh.all())
            if _copy_fresh(conn, table, columns, batch if everything else batch.select(fresh)):
                if everything:
                    return len(fresh), 0
                inserted, updated = _upsert_changed(conn, table, columns, batch.select(~fresh), now)
                return int(fresh.sum()) + inserted, updated
        return _upsert_changed(conn, table, columns, batch, now)


def copy_types(table: sa.Table, columns: Sequence[str]) -> list[PgType]:
    """The binary COPY type of each of `columns`."""
    return [_copy_type(table.c[name]) for name in columns]


def _server_now(conn: sa.Connection) -> datetime:
    return conn.execute(sa.select(sa.func.current_timestamp())).scalar_one()


def _upsert_with_values(
    conn: sa.Connection, table: sa.Table, columns: Sequence[str], tuples: list[tuple[Any, ...]], now: datetime
) -> tuple[int, int]:
    inserted = updated = 0
    for start in range(0, len(tuples), INSERT_CHUNK):
        records = [
            {**dict(zip(columns, values, strict=True)), "first_loaded_at": now, "updated_at": now}
            for values in tuples[start : start + INSERT_CHUNK]
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
        set_={
            **{name: statement.excluded[name] for name in value_names},
            "updated_at": statement.excluded.updated_at,
        },
        where=sa.or_(*(table.c[name].is_distinct_from(statement.excluded[name]) for name in value_names)),
    ).returning(sa.literal_column("xmax = 0", sa.Boolean))


def _rows_of_unstored_codes(conn: sa.Connection, table: sa.Table, batch: KeySortedBatch) -> npt.NDArray[np.bool_]:
    """Mask of the rows whose code has nothing stored yet."""
    stored = set(
        conn.execute(
            sa.text(
                f"SELECT c FROM unnest(CAST(:codes AS text[])) AS c "
                f"WHERE EXISTS (SELECT 1 FROM {table.name} t WHERE t.code = c)"
            ),
            {"codes": batch.code_names},
        ).scalars()
    )
    unstored = np.array([code not in stored for code in batch.code_names], dtype=bool)
    return unstored[batch.code_ids]


def _copy_fresh(conn: sa.Connection, table: sa.Table, columns: Sequence[str], batch: KeySortedBatch) -> bool:
    """COPY rows of never-stored codes straight into the table; False if a concurrent writer got there first."""
    try:
        with conn.begin_nested():
            _copy(conn, table.name, columns, batch)
    except psycopg.errors.UniqueViolation:
        return False
    return True


def _upsert_changed(
    conn: sa.Connection, table: sa.Table, columns: Sequence[str], batch: KeySortedBatch, now: datetime
) -> tuple[int, int]:
    """Merge the rows of `batch` that are new or differ from the stored ones; the rest stay unsent.

    The server reads the stored rows back while this process validates the batch: the two take about as
    long, so the comparison costs little more than the validation the batch needed anyway.
    """
    keys = len(KEY_COLUMNS)
    with _local_settings(conn, READBACK_SETTINGS):
        driver = conn.connection.driver_connection
        reader = start_reading_stored_columns(driver, table.name, columns[keys:], batch)
        chunks: list[list[CopyColumn]] = []
        try:
            for chunk in batch.column_chunks():  # raises InvalidRowError if a row is bad
                chunks.append(chunk)
                reader.pump()
        except BaseException:
            reader.cancel()  # the connection must be free for the savepoint's rollback
            raise
        stored = reader.finish()
    # Chunk by chunk, so that a re-load of unchanged rows never builds whole-batch columns.
    batch_keys, masks, start = batch.keys(), [], 0
    for chunk in chunks:
        stop = start + len(chunk[0].values)
        masks.append(unchanged_rows(batch_keys[start:stop], chunk[keys:], stored))
        start = stop
    if all(mask.all() for mask in masks):
        return 0, 0
    changed = concatenate_columns([select_rows(chunk, ~mask) for chunk, mask in zip(chunks, masks, strict=True)])
    return _upsert_via_stage(conn, table, columns, changed, now)


def _upsert_via_stage(
    conn: sa.Connection, table: sa.Table, columns: Sequence[str], values: Sequence[CopyColumn], now: datetime
) -> tuple[int, int]:
    column_list = ", ".join(columns)
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {_STAGE}")
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {_STAGE} ON COMMIT DROP AS SELECT {column_list} FROM {table.name} WITH NO DATA"
    )
    _copy_chunks(conn, _STAGE, columns, split_rows(values, ROWS_PER_CHUNK))
    with _local_settings(conn, MERGE_SETTINGS):
        try:
            with conn.begin_nested():
                counts = conn.execute(sa.text(_merge_sql(table, columns, optimistic=True)), {"now": now}).one()
        except sa.exc.IntegrityError as exc:
            if not isinstance(exc.orig, psycopg.errors.UniqueViolation):
                raise
            # A concurrent writer inserted one of our new keys after the anti-join looked: let ON CONFLICT decide.
            counts = conn.execute(sa.text(_merge_sql(table, columns, optimistic=False)), {"now": now}).one()
    conn.exec_driver_sql(f"DROP TABLE {_STAGE}")
    return int(counts.inserted), int(counts.updated)


@contextmanager
def _local_settings(conn: sa.Connection, settings: Mapping[str, str]) -> Iterator[None]:
    """`settings` for the statements inside only; the caller's values return after (the transaction is theirs).

    On an error they are not restored here: the savepoint the error unwinds to undoes them.
    """
    saved = {name: conn.exec_driver_sql("SELECT current_setting(%s)", (name,)).scalar_one() for name in settings}
    for name, value in settings.items():
        conn.exec_driver_sql("SELECT set_config(%s, %s, true)", (name, value))
    yield
    for name, value in saved.items():
        conn.exec_driver_sql("SELECT set_config(%s, %s, true)", (name, value))


def _copy(conn: sa.Connection, target: str, columns: Sequence[str], batch: KeySortedBatch) -> None:
    # Chunks are validated and encoded as they are sent: the server stores one while the client
    # prepares the next (a writer thread measured no faster).
    _copy_chunks(conn, target, columns, batch.column_chunks())


def _copy_chunks(
    conn: sa.Connection, target: str, columns: Sequence[str], chunks: Iterable[Sequence[CopyColumn]]
) -> None:
    cursor = conn.connection.cursor()
    try:
        with cursor.copy(f"COPY {target} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
            for block in binary_copy_stream(chunks):
                copy.write(block)
    finally:
        cursor.close()


def _merge_sql(table: sa.Table, columns: Sequence[str], *, optimistic: bool) -> str:
    """One statement: drop identical rows (anti-join), insert new keys, update changed ones.

    Optimistic: new keys get a plain INSERT, as speculative insertion (ON CONFLICT) costs about twice as
    much; it fails with a unique violation if a concurrent writer inserted one of them meanwhile, and the
    caller then runs the non-optimistic form, where ON CONFLICT handles every row.
    """
    name = table.name
    values = [c for c in columns if c not in KEY_COLUMNS]
    stored = ", ".join(f"t.{c}" for c in values)
    staged = ", ".join(f"s.{c}" for c in values)
    excluded = ", ".join(f"EXCLUDED.{c}" for c in values)
    assignments = ", ".join(f"{c} = EXCLUDED.{c}" for c in values)
    column_list = ", ".join(columns)
    changed = f"""
        changed AS (
            SELECT s.*, t.code IS NULL AS is_new FROM {_STAGE} s
              LEFT JOIN {name} t ON t.code = s.code AND t.trade_date = s.trade_date
             WHERE t.code IS NULL OR ({stored}) IS DISTINCT FROM ({staged})
        )"""
    upsert = f"""
            INSERT INTO {name} AS t ({column_list}, first_loaded_at, updated_at)
            SELECT {column_list}, CAST(:now AS TIMESTAMPTZ), CAST(:now AS TIMESTAMPTZ)
              FROM changed {{where}} ORDER BY code, trade_date
            ON CONFLICT (code, trade_date) DO UPDATE
               SET {assignments}, updated_at = EXCLUDED.updated_at
             WHERE ({stored}) IS DISTINCT FROM ({excluded})
            RETURNING (xmax = 0) AS was_insert"""
    if not optimistic:
        return f"""
            WITH {changed}, written AS ({upsert.format(where="")})
            SELECT count(*) FILTER (WHERE was_insert) AS inserted, count(*) FILTER (WHERE NOT was_insert) AS updated
              FROM written
        """
    return f"""
        WITH {changed}, inserted AS (
            INSERT INTO {name} ({column_list}, first_loaded_at, updated_at)
            SELECT {column_list}, CAST(:now AS TIMESTAMPTZ), CAST(:now AS TIMESTAMPTZ)
              FROM changed WHERE is_new ORDER BY code, trade_date
            RETURNING 1
        ), updated AS ({upsert.format(where="WHERE NOT is_new")})
        SELECT (SELECT count(*) FROM inserted) AS inserted, (SELECT count(*) FROM updated) AS updated
    """


def _copy_type(column: sa.Column[Any]) -> PgType:
    for python_type, pg_type in _COPY_TYPES.items():
        if isinstance(column.type, python_type):
            return pg_type
    raise TypeError(f"no COPY type for {column.table.name}.{column.name} ({column.type})")
