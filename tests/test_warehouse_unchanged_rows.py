"""Large re-loads: stored rows read back and compared in numpy, so only new or changed rows are sent.

The comparison must match SQL's IS DISTINCT FROM: calling a changed row unchanged loses an update, and
calling an unchanged row changed costs a merge for nothing. Counts alone catch only the first, so the
comparison's verdicts are also checked row by row against a real database.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from pipelines.warehouse import InvalidRowError, UpsertResult, upsert_batch, upsert_rows
from pipelines.warehouse.bulk_columns import KeySortedBatch, key_sorted_batch
from pipelines.warehouse.postgres_upsert import COPY_THRESHOLD, copy_types
from pipelines.warehouse.schema import KEY_COLUMNS, us_short_interest, value_columns
from pipelines.warehouse.stored_columns import read_stored_columns, unchanged_rows
from proto_client.records import UsShortInterestRow
from proto_client.security import Market

FIRST_DAY = date(2010, 3, 1)
BIGINT_MAX = 2**63 - 1
COLUMNS = (*KEY_COLUMNS, *value_columns(us_short_interest))
FIELDS = tuple("timestamp" if name == "source_timestamp" else name for name in COLUMNS)


def history(code: str, days: int, start: date = FIRST_DAY, **changes: Any) -> list[UsShortInterestRow]:
    rows = []
    for i in range(days):
        day = start + timedelta(days=i)
        stamp = int(datetime(day.year, day.month, day.day, tzinfo=Market.US.tz).timestamp())
        row = UsShortInterestRow(code, day, stamp, 1_000 + i, 1.25, 40_000, 0.5, 10.0 + i / 64, 9.5)
        rows.append(replace(row, **changes))
    return rows


def as_batch(rows: list[UsShortInterestRow]) -> KeySortedBatch:
    return key_sorted_batch(rows, FIELDS, copy_types(us_short_interest, COLUMNS), Market.US)


def judged_unchanged(pg_engine: sa.Engine, rows: list[UsShortInterestRow], *, heap_order: bool = False) -> list[bool]:
    """The comparison's verdict per row of `rows` (in key order) against what is stored.

    heap_order: keep the server off the key's index, so stored rows arrive in the order the heap holds them.
    """
    batch = as_batch(rows)
    with pg_engine.begin() as conn:
        if heap_order:  # a sequential scan: an index or bitmap scan follows HOT chains back to key order
            conn.exec_driver_sql("SET LOCAL enable_indexscan = off")
            conn.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
        stored = read_stored_columns(conn.connection.driver_connection, us_short_interest.name, COLUMNS[2:], batch)
    return unchanged_rows(batch.keys(), batch.columns()[2:], stored).tolist()


def stored_rows(pg_engine: sa.Engine) -> dict[tuple[str, date], sa.Row[Any]]:
    with pg_engine.connect() as conn:
        return {(r.code, r.trade_date): r for r in conn.execute(sa.select(us_short_interest))}


def test_verdicts_follow_is_distinct_from_for_nulls_zeros_and_huge_counts(pg_engine: sa.Engine) -> None:
    base = history("US.CMP", 9)
    base[1] = replace(base[1], shares_short=None, close_price=None)
    base[2] = replace(base[2], short_percent=0.0)
    base[3] = replace(base[3], avg_daily_share_volume=BIGINT_MAX)
    base[4] = replace(base[4], days_to_cover=None)
    upsert_batch(pg_engine, base)
    again = [
        base[0],  # identical
        base[1],  # NULL against NULL: not distinct
        replace(base[2], short_percent=-0.0),  # float8 says -0.0 = 0.0
        base[3],  # the largest BIGINT, identical
        replace(base[4], days_to_cover=0.0),  # value against NULL: distinct
        replace(base[5], shares_short=None),  # NULL against value: distinct
        replace(base[6], avg_daily_share_volume=BIGINT_MAX),  # a change only in the high bits
        replace(base[7], last_close_price=math.nextafter(9.5, 10.0)),  # one ulp
        *history("US.CMP", 2, start=FIRST_DAY + timedelta(days=9)),  # not stored: new
        *history("US.NONE", 2),  # a code with no stored rows at all
    ]
    expected = [True, True, True, True, False, False, False, False, False, False, False, False]
    assert judged_unchanged(pg_engine, again) == expected


def test_verdicts_hold_when_the_server_returns_stored_rows_out_of_key_order(pg_engine: sa.Engine) -> None:
    rows = history("US.ORD", 40)
    upsert_batch(pg_engine, rows)
    revised = [replace(r, close_price=1.0) if i % 3 == 0 else r for i, r in enumerate(rows)]
    upsert_batch(pg_engine, revised)  # updated rows move to the end of the heap
    with pg_engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL enable_indexscan = off")
        heap = conn.exec_driver_sql("SELECT trade_date FROM us_short_interest").scalars().all()
    assert heap != sorted(heap)
    assert judged_unchanged(pg_engine, revised, heap_order=True) == [True] * len(rows)
    assert judged_unchanged(pg_engine, rows, heap_order=True) == [i % 3 != 0 for i in range(len(rows))]


def test_mixed_bulk_reload_counts_exactly_and_stamps_only_real_changes(pg_engine: sa.Engine) -> None:
    old = history("US.OLD", COPY_THRESHOLD)
    old[5] = replace(old[5], shares_short=None)
    old[6] = replace(old[6], short_percent=0.0)
    outside = history("US.OLD", 30, start=FIRST_DAY - timedelta(days=40))  # stored, not in the re-load
    upsert_batch(pg_engine, [*outside, *old[:-100]])
    before = stored_rows(pg_engine)
    reload = [
        *old[:5],
        old[5],  # NULL again: unchanged
        replace(old[6], short_percent=-0.0),  # unchanged by SQL's float8 equality
        replace(old[7], shares_short=None),  # revised to NULL
        replace(old[8], close_price=old[8].close_price + 1),  # revised value
        replace(old[9], avg_daily_share_volume=BIGINT_MAX),  # revised to the largest BIGINT
        *old[10:],  # the last 100 are new keys of a stored code
        *history("US.NEW", 50),  # a code with no stored rows: COPYed straight in
    ]
    assert upsert_batch(pg_engine, reload) == UpsertResult(inserted=150, updated=3, unchanged=len(old) - 103)
    after = stored_rows(pg_engine)
    assert len(after) == len(outside) + len(old) + 50
    for row in outside:  # outside the batch's dates: untouched
        assert after[row.code, row.trade_date] == before[row.code, row.trade_date]
    for i, row in enumerate(old[:-100]):
        now, then = after[row.code, row.trade_date], before[row.code, row.trade_date]
        assert now.first_loaded_at == then.first_loaded_at
        assert (now.updated_at > then.updated_at) == (i in (7, 8, 9))
    assert after["US.OLD", old[7].trade_date].shares_short is None
    assert after["US.OLD", old[9].trade_date].avg_daily_share_volume == BIGINT_MAX
    assert np.copysign(1.0, after["US.OLD", old[6].trade_date].short_percent) == 1.0  # 0.0 kept, not -0.0
    assert upsert_batch(pg_engine, reload) == UpsertResult(unchanged=len(reload))
    assert stored_rows(pg_engine) == after


def test_bad_row_among_unchanged_rows_is_refused_and_nothing_is_written(pg_engine: sa.Engine) -> None:
    rows = history("US.BAD", COPY_THRESHOLD + 50)
    upsert_batch(pg_engine, rows)
    before = stored_rows(pg_engine)
    changed = [replace(r, close_price=2.0) for r in rows[:10]]
    bad = replace(rows[-1], days_to_cover=float("nan"))  # its key is stored and every other field equal
    with pytest.raises(InvalidRowError, match="days_to_cover = nan is not a finite number") as caught:
        upsert_batch(pg_engine, [*changed, *rows[10:-1], bad])
    assert caught.value.trade_date == bad.trade_date
    assert stored_rows(pg_engine) == before


def test_reload_in_the_callers_transaction_sees_its_own_writes_and_keeps_its_settings(pg_engine: sa.Engine) -> None:
    rows = history("US.TXN", COPY_THRESHOLD + 10)
    with pg_engine.begin() as conn:
        conn.exec_driver_sql("SELECT set_config('jit', 'on', true)")
        assert upsert_rows(conn, rows) == UpsertResult(inserted=len(rows))
        assert upsert_rows(conn, rows) == UpsertResult(unchanged=len(rows))
        revised = [replace(r, close_price=3.0) if i % 2 else r for i, r in enumerate(rows)]
        assert upsert_rows(conn, revised) == UpsertResult(updated=len(rows) // 2, unchanged=len(rows) - len(rows) // 2)
        assert conn.exec_driver_sql("SELECT current_setting('jit')").scalar_one() == "on"
