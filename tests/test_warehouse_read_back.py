"""The read-back of stored rows runs while the batch is validated: the connection must come back usable.

The query is sent, the reply taken in between validation chunks, and finished (or cancelled) before the
connection runs anything else; a server error must arrive as the psycopg error it is, and a reply the
server cuts into messages other than a row each must decode the same.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import psycopg
import pytest
import sqlalchemy as sa

from pipelines.warehouse import InvalidRowError, UpsertResult, upsert_batch, upsert_rows
from pipelines.warehouse.postgres_upsert import COPY_THRESHOLD
from pipelines.warehouse.schema import us_short_interest
from pipelines.warehouse.stored_columns import _decode, read_stored_columns, start_reading_stored_columns
from proto_client.records import UsShortInterestRow
from tests.test_warehouse_unchanged_rows import COLUMNS, as_batch, history


@pytest.fixture
def stored(pg_engine: sa.Engine) -> list[UsShortInterestRow]:
    rows = [*history("US.AAA", 300), *history("US.BBB", 300), *history("US.CCC", 300)]
    upsert_batch(pg_engine, rows)
    return rows


def test_a_cancelled_read_back_leaves_the_connection_usable(pg_engine: sa.Engine, stored: list) -> None:
    with pg_engine.connect() as conn:
        driver = conn.connection.driver_connection
        reader = start_reading_stored_columns(driver, us_short_interest.name, COLUMNS[2:], as_batch(stored))
        reader.cancel()
        conn.rollback()  # the cancelled query may have failed the transaction
        assert conn.execute(sa.text("SELECT count(*) FROM us_short_interest")).scalar_one() == len(stored)


def test_cancelling_a_finished_read_back_changes_nothing(pg_engine: sa.Engine, stored: list) -> None:
    with pg_engine.connect() as conn:
        driver = conn.connection.driver_connection
        reader = start_reading_stored_columns(driver, us_short_interest.name, COLUMNS[2:], as_batch(stored))
        reader.pump()
        assert len(reader.finish().keys) == len(stored)
        reader.cancel()  # nothing left to stop: a no-op
        assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1


def test_a_server_error_arrives_as_its_psycopg_error(pg_engine: sa.Engine, stored: list) -> None:
    with pg_engine.connect() as conn:
        driver = conn.connection.driver_connection
        reader = start_reading_stored_columns(driver, "no_such_table", COLUMNS[2:], as_batch(stored))
        with pytest.raises(psycopg.errors.UndefinedTable, match="no_such_table"):
            reader.finish()
        conn.rollback()
        assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1


def test_a_reply_cut_anywhere_decodes_as_one_cut_by_rows(pg_engine: sa.Engine, stored: list) -> None:
    batch = as_batch(stored)
    with pg_engine.connect() as conn:
        driver = conn.connection.driver_connection
        reader = start_reading_stored_columns(driver, us_short_interest.name, COLUMNS[2:], batch)
        by_rows = reader.finish()
        messages = reader._pieces
    payload = b"".join(messages)
    for size in (7, 1000, len(payload)):
        pieces = [memoryview(payload[i : i + size]) for i in range(0, len(payload), size)]
        recut = _decode(pieces, reader._record, us_short_interest.name)
        assert np.array_equal(recut.keys, by_rows.keys)
        assert all(np.array_equal(a, b) for a, b in zip(recut.values, by_rows.values, strict=True))
        assert np.array_equal(recut.nulls, by_rows.nulls)
    assert len(by_rows.keys) == len(stored)


def test_the_waiting_form_reads_what_the_pumped_form_reads(pg_engine: sa.Engine, stored: list) -> None:
    with pg_engine.connect() as conn:
        driver = conn.connection.driver_connection
        waited = read_stored_columns(driver, us_short_interest.name, COLUMNS[2:], as_batch(stored))
    assert np.array_equal(waited.keys, np.sort(waited.keys)) and len(waited.keys) == len(stored)


def test_a_bad_row_in_a_reload_keeps_the_callers_transaction_going(pg_engine: sa.Engine) -> None:
    rows = history("US.TXN", COPY_THRESHOLD + 20)
    with pg_engine.begin() as conn:
        assert upsert_rows(conn, rows) == UpsertResult(inserted=len(rows))
        bad = replace(rows[-3], close_price=float("nan"))
        with pytest.raises(InvalidRowError, match="close_price = nan"):
            upsert_rows(conn, [*rows[:-3], bad, *rows[-2:]])
        revised = [replace(r, close_price=1.0) if i % 4 == 0 else r for i, r in enumerate(rows)]
        assert upsert_rows(conn, revised) == UpsertResult(
            updated=len(range(0, len(rows), 4)), unchanged=len(rows) - len(range(0, len(rows), 4))
        )
    with pg_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM us_short_interest")).scalar_one() == len(rows)


def test_a_read_back_on_a_lost_connection_fails_with_psycopgs_error_and_cancels_quietly(
    pg_engine: sa.Engine, stored: list
) -> None:
    with pg_engine.connect() as conn, pg_engine.connect() as killer:
        driver = conn.connection.driver_connection
        pid = driver.info.backend_pid
        killer.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        gone = sa.text("SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = :pid)")
        deadline = time.monotonic() + 10
        while not killer.execute(gone, {"pid": pid}).scalar_one():
            assert time.monotonic() < deadline, "the server process outlived pg_terminate_backend"
            killer.rollback()  # pg_stat_activity is read once per transaction
            time.sleep(0.01)
        reader = None
        with pytest.raises(psycopg.OperationalError):  # when sending, or when reading the reply
            reader = start_reading_stored_columns(driver, us_short_interest.name, COLUMNS[2:], as_batch(stored))
            reader.finish()
        if reader is not None:
            reader.cancel()  # nothing left to stop, and no second error
        conn.invalidate()
    with pg_engine.connect() as conn:  # the pool hands out a working connection again
        assert conn.execute(sa.text("SELECT count(*) FROM us_short_interest")).scalar_one() == len(stored)
