"""Large PostgreSQL batches: streamed validation, the empty-table load, and their fallbacks."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from pipelines.warehouse import InvalidRowError, UpsertResult, upsert_batch, upsert_rows
from pipelines.warehouse.bulk_columns import ROWS_PER_CHUNK
from pipelines.warehouse.initial_load import INITIAL_LOAD_MIN_ROWS
from proto_client.records import UsShortInterestRow
from proto_client.security import Market

FIRST_DAY = date(2000, 1, 3)


def history(codes: int, days: int, **changes: Any) -> list[UsShortInterestRow]:
    """`days` consecutive days for each of `codes` codes, in key order."""
    dates = [FIRST_DAY + timedelta(days=i) for i in range(days)]
    stamps = [int(datetime(d.year, d.month, d.day, tzinfo=Market.US.tz).timestamp()) for d in dates]
    return [
        replace(
            UsShortInterestRow(
                code=f"US.C{code_no:04d}",
                trade_date=day,
                timestamp=stamp,
                shares_short=1_000 + code_no,
                short_percent=1.5,
                avg_daily_share_volume=20_000,
                days_to_cover=0.25,
                close_price=10.0 + day_no / 100,
                last_close_price=10.0,
            ),
            **changes,
        )
        for code_no in range(codes)
        for day_no, (day, stamp) in enumerate(zip(dates, stamps, strict=True))
    ]


def count_rows(pg_engine: sa.Engine) -> int:
    with pg_engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM us_short_interest")).scalar_one()


def primary_key_of(pg_engine: sa.Engine) -> str | None:
    with pg_engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = 'us_short_interest'::regclass AND conname = 'pk_us_short_interest'"
            )
        ).scalar_one_or_none()


def test_bad_row_in_a_later_chunk_aborts_the_copy_and_keeps_the_callers_transaction(pg_engine: sa.Engine) -> None:
    rows = history(3, ROWS_PER_CHUNK // 2 + 10)  # three chunks; the bad row is in the last
    bad = replace(rows[-5], shares_short=-1)
    with pg_engine.begin() as conn:
        upsert_rows(conn, history(1, 3, shares_short=7)[:1])  # written before, in the same transaction
        with pytest.raises(InvalidRowError, match="shares_short = -1 is negative") as caught:
            upsert_rows(conn, [*rows[:-5], bad, *rows[-4:]])
        assert caught.value.code == bad.code and caught.value.trade_date == bad.trade_date
        assert upsert_rows(conn, history(1, 2, shares_short=7)) == UpsertResult(inserted=1, unchanged=1)
    assert count_rows(pg_engine) == 2


def test_large_batch_into_empty_table_keeps_its_primary_key(pg_engine: sa.Engine) -> None:
    before = primary_key_of(pg_engine)
    rows = history(INITIAL_LOAD_MIN_ROWS // 400 + 1, 400)
    assert upsert_batch(pg_engine, rows) == UpsertResult(inserted=len(rows))
    assert primary_key_of(pg_engine) == before == "PRIMARY KEY (code, trade_date)"
    assert count_rows(pg_engine) == len(rows)
    changed = [replace(row, close_price=1.0) if i % 3 == 0 else row for i, row in enumerate(rows)]
    assert upsert_batch(pg_engine, changed) == UpsertResult(
        updated=len(range(0, len(rows), 3)), unchanged=len(rows) * 2 // 3
    )
    with pytest.raises(sa.exc.IntegrityError, match="pk_us_short_interest"), pg_engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO us_short_interest (code, trade_date, source_timestamp) VALUES (:c, :d, :t)"),
            {"c": rows[0].code, "d": rows[0].trade_date, "t": rows[0].timestamp},
        )


def test_bad_row_in_a_large_first_load_leaves_the_table_empty_and_keyed(pg_engine: sa.Engine) -> None:
    rows = history(INITIAL_LOAD_MIN_ROWS // 400 + 1, 400)
    rows[-1] = replace(rows[-1], close_price=float("inf"))
    with pytest.raises(InvalidRowError, match="close_price = inf is not a finite number"):
        upsert_batch(pg_engine, rows)
    assert count_rows(pg_engine) == 0
    assert primary_key_of(pg_engine) == "PRIMARY KEY (code, trade_date)"


def test_large_first_load_while_a_reader_holds_the_table_takes_the_ordinary_path(
    pg_engine: sa.Engine, postgres_url: str
) -> None:
    rows = history(INITIAL_LOAD_MIN_ROWS // 400 + 1, 400)
    rows.reverse()  # also exercises the sort
    # Were the exclusive lock awaited, the load would fail on this timeout instead of hanging the test.
    writer = sa.create_engine(postgres_url, connect_args={"options": "-c statement_timeout=10s"})
    try:
        with pg_engine.connect() as reader:
            reader.execute(sa.text("SELECT count(*) FROM us_short_interest")).scalar_one()  # holds ACCESS SHARE
            assert upsert_batch(writer, rows) == UpsertResult(inserted=len(rows))
            reader.rollback()
    finally:
        writer.dispose()
    assert count_rows(pg_engine) == len(rows)
    assert primary_key_of(pg_engine) == "PRIMARY KEY (code, trade_date)"


def test_large_batch_for_new_codes_in_a_filled_table_inserts_only(pg_engine: sa.Engine) -> None:
    rows = history(INITIAL_LOAD_MIN_ROWS // 400 + 1, 400)
    upsert_batch(pg_engine, rows[:400])
    assert upsert_batch(pg_engine, rows) == UpsertResult(inserted=len(rows) - 400, unchanged=400)
    assert count_rows(pg_engine) == len(rows)


def test_bulk_merge_counts_a_mixed_reload_and_restores_the_callers_planner_settings(pg_engine: sa.Engine) -> None:
    rows = history(6, 500)
    upsert_batch(pg_engine, rows[: 5 * 500])
    changed = [replace(row, close_price=row.close_price + 1) if i % 7 == 0 else row for i, row in enumerate(rows)]
    settings = ("work_mem", "jit", "enable_hashjoin")
    with pg_engine.begin() as conn:
        for name in settings:
            conn.exec_driver_sql("SELECT set_config(%s, %s, true)", (name, "on" if name != "work_mem" else "5MB"))
        result = upsert_rows(conn, changed)
        after = [conn.exec_driver_sql("SELECT current_setting(%s)", (name,)).scalar_one() for name in settings]
    updated = len(range(0, 5 * 500, 7))
    assert result == UpsertResult(inserted=500, updated=updated, unchanged=5 * 500 - updated)
    assert after == ["5MB", "on", "on"]
    assert count_rows(pg_engine) == len(rows)


def test_bulk_load_stores_dates_on_both_sides_of_the_binary_epoch(pg_engine: sa.Engine) -> None:
    # Binary COPY counts days from 2000-01-01: dates before it are negative, and leap days must not shift.
    dates = [date(1996, 2, 20) + timedelta(days=i) for i in range(3_000)]  # to 2004, over three Feb 29ths
    rows = [
        UsShortInterestRow(
            code="US.EPOCH",
            trade_date=day,
            timestamp=int(datetime(day.year, day.month, day.day, tzinfo=Market.US.tz).timestamp()),
            shares_short=1,
            short_percent=None,
            avg_daily_share_volume=None,
            days_to_cover=None,
            close_price=None,
            last_close_price=None,
        )
        for day in dates
    ]
    assert upsert_batch(pg_engine, rows) == UpsertResult(inserted=len(rows))
    with pg_engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT trade_date FROM us_short_interest ORDER BY trade_date")).scalars()
        assert list(stored) == dates
