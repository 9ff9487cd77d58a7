"""Revision-aware upsert against real PostgreSQL and SQLite: counts, audit stamps, validation, concurrency."""

from __future__ import annotations

import math
import multiprocessing
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from pipelines.warehouse import (
    InvalidRowError,
    UpsertResult,
    create_engine_for,
    hk_short_interest,
    upgrade,
    upsert_batch,
    upsert_rows,
    us_short_interest,
)
from proto_client.records import HkShortInterestRow, UsShortInterestRow
from proto_client.security import Market

FIRST_DAY = date(2024, 1, 2)
# More rows than one INSERT statement carries (a backfill of many pages at once).
LARGE = 2_500


def midnight(day: date, market: Market) -> int:
    """The gateway's timestamp for a trading day: local midnight in the market's zone."""
    return int(datetime(day.year, day.month, day.day, tzinfo=market.tz).timestamp())


def us_row(code: str = "US.AAPL", day: date = FIRST_DAY, **changes: Any) -> UsShortInterestRow:
    row = UsShortInterestRow(
        code=code,
        trade_date=day,
        timestamp=midnight(day, Market.US),
        shares_short=120_000_000,
        short_percent=0.81,
        avg_daily_share_volume=55_000_000,
        days_to_cover=2.18,
        close_price=185.64,
        last_close_price=192.53,
    )
    return replace(row, **changes)


def hk_row(code: str = "HK.00700", day: date = FIRST_DAY, **changes: Any) -> HkShortInterestRow:
    row = HkShortInterestRow(
        code=code,
        trade_date=day,
        timestamp=midnight(day, Market.HK),
        aggregated_short=51_480_638,
        aggregated_short_ratio=0.56,
        close_price=467.8,
        last_close_price=479.2,
    )
    return replace(row, **changes)


def us_history(code: str, days: int, start: date = FIRST_DAY, **changes: Any) -> list[UsShortInterestRow]:
    return [us_row(code, start + timedelta(days=i), **changes) for i in range(days)]


def stored(warehouse_engine: sa.Engine, table: sa.Table = us_short_interest) -> list[sa.Row[Any]]:
    with warehouse_engine.connect() as conn:
        return list(conn.execute(sa.select(table).order_by(table.c.code, table.c.trade_date)))


def test_counts_inserted_updated_unchanged(warehouse_engine: sa.Engine) -> None:
    rows = us_history("US.AAPL", 5)
    assert upsert_batch(warehouse_engine, rows) == UpsertResult(inserted=5, updated=0, unchanged=0)
    assert upsert_batch(warehouse_engine, rows) == UpsertResult(inserted=0, updated=0, unchanged=5)

    revised = [*rows[:4], replace(rows[4], shares_short=1), us_row("US.AAPL", FIRST_DAY + timedelta(days=9))]
    result = upsert_batch(warehouse_engine, revised)
    assert result == UpsertResult(inserted=1, updated=1, unchanged=4)
    assert result.total == 6
    assert len(stored(warehouse_engine)) == 6


def test_result_addition() -> None:
    assert UpsertResult(1, 2, 3) + UpsertResult(10, 20, 30) == UpsertResult(11, 22, 33)
    assert UpsertResult().total == 0


def test_values_round_trip_exactly(warehouse_engine: sa.Engine) -> None:
    big = 2**63 - 1
    row = us_row(shares_short=big, avg_daily_share_volume=2**31 + 7, short_percent=0.1 + 0.2, close_price=1e-7)
    upsert_batch(warehouse_engine, [row])
    upsert_batch(warehouse_engine, [hk_row(aggregated_short=2**40, aggregated_short_ratio=1 / 3)])
    (us,) = stored(warehouse_engine)
    assert (us.shares_short, us.avg_daily_share_volume) == (big, 2**31 + 7)
    assert us.short_percent == 0.1 + 0.2  # not 0.3: the double is kept bit for bit
    assert us.close_price == 1e-7
    assert us.source_timestamp == row.timestamp
    (hk,) = stored(warehouse_engine, hk_short_interest)
    assert (hk.aggregated_short, hk.aggregated_short_ratio) == (2**40, 1 / 3)


def test_nulls_are_stored_and_compared(warehouse_engine: sa.Engine) -> None:
    row = us_row(shares_short=None, days_to_cover=None)
    assert upsert_batch(warehouse_engine, [row]).inserted == 1
    assert upsert_batch(warehouse_engine, [row]).unchanged == 1
    assert upsert_batch(warehouse_engine, [replace(row, shares_short=5)]).updated == 1
    assert upsert_batch(warehouse_engine, [row]).updated == 1
    assert stored(warehouse_engine)[0].shares_short is None


def test_percentages_above_100_are_kept(warehouse_engine: sa.Engine) -> None:
    assert upsert_batch(warehouse_engine, [us_row(short_percent=140.2)]).inserted == 1
    assert stored(warehouse_engine)[0].short_percent == 140.2


def test_revision_moves_updated_at_but_not_first_loaded_at(warehouse_engine: sa.Engine) -> None:
    rows = us_history("US.MSFT", 3)
    upsert_batch(warehouse_engine, rows)
    before = {r.trade_date: r for r in stored(warehouse_engine)}
    for r in before.values():
        assert r.first_loaded_at == r.updated_at

    upsert_batch(warehouse_engine, [rows[0], replace(rows[1], close_price=999.5), rows[2]])
    after = {r.trade_date: r for r in stored(warehouse_engine)}
    changed, same = after[rows[1].trade_date], after[rows[0].trade_date]
    assert changed.close_price == 999.5
    assert changed.first_loaded_at == before[rows[1].trade_date].first_loaded_at
    assert changed.updated_at > before[rows[1].trade_date].updated_at
    assert same.updated_at == before[rows[0].trade_date].updated_at
    assert after[rows[2].trade_date].updated_at == before[rows[2].trade_date].updated_at


def test_unchanged_reload_does_not_touch_rows(warehouse_engine: sa.Engine) -> None:
    rows = us_history("US.NVDA", 4)
    upsert_batch(warehouse_engine, rows)
    before = stored(warehouse_engine)
    assert upsert_batch(warehouse_engine, list(reversed(rows))) == UpsertResult(unchanged=4)
    assert stored(warehouse_engine) == before


def test_large_batches_have_exact_counts(warehouse_engine: sa.Engine) -> None:
    count = LARGE
    half = count // 2
    stored_code = us_history("US.OLD", half)
    assert upsert_batch(warehouse_engine, stored_code[:10]).inserted == 10
    # One code already has rows, one has none.
    batch = [
        *[replace(r, close_price=1.0) if i % 100 == 0 else r for i, r in enumerate(stored_code)],
        *us_history("US.NEW", count - half),
    ]
    # Rows of one revised stored key (index 0) count as updated; the other nine stored rows are unchanged.
    result = upsert_batch(warehouse_engine, batch)
    assert result == UpsertResult(inserted=count - 10, updated=1, unchanged=9)
    again = upsert_batch(warehouse_engine, batch)
    assert again == UpsertResult(unchanged=count)
    assert len(stored(warehouse_engine)) == count


def test_upsert_rows_joins_the_callers_transaction(warehouse_engine: sa.Engine) -> None:
    with pytest.raises(RuntimeError), warehouse_engine.begin() as conn:
        assert upsert_rows(conn, us_history("US.AAPL", 3)).inserted == 3
        raise RuntimeError("the caller fails after writing")
    assert stored(warehouse_engine) == []


def test_empty_batch_is_a_no_op(warehouse_engine: sa.Engine) -> None:
    assert upsert_batch(warehouse_engine, []) == UpsertResult()


class Ticker(str):
    """A str subclass: parses as a code, yet is not the exact type the warehouse's column checks take."""


BAD_ROWS = {
    "negative count": (us_row(day=date(2024, 2, 1), shares_short=-1), "shares_short = -1 is negative"),
    "count above bigint": (us_row(day=date(2024, 2, 1), avg_daily_share_volume=2**63), "exceeds the BIGINT"),
    "float count": (us_row(day=date(2024, 2, 1), shares_short=1.5), "shares_short = 1.5 is not an integer"),
    "NaN": (us_row(day=date(2024, 2, 1), short_percent=math.nan), "short_percent = nan is not a finite"),
    "infinity": (us_row(day=date(2024, 2, 1), close_price=math.inf), "close_price = inf is not a finite"),
    "negative infinity": (us_row(day=date(2024, 2, 1), days_to_cover=-math.inf), "days_to_cover = -inf"),
    "date of another day": (
        us_row(day=date(2024, 2, 1), timestamp=midnight(date(2024, 2, 2), Market.US)),
        "is 2024-02-02 in America/New_York",
    ),
    "UTC midnight": (
        us_row(day=date(2024, 2, 1), timestamp=int(datetime(2024, 2, 1, tzinfo=UTC).timestamp())),
        "not the trade_date",
    ),
    "code of the other market": (us_row(code="HK.00700", day=date(2024, 2, 1)), "is a HK security"),
    "malformed code": (us_row(code="AAPL", day=date(2024, 2, 1)), "no market prefix"),
    "duplicate key": (us_row(day=FIRST_DAY + timedelta(days=3), close_price=1.0), "appears twice"),
    "bool count": (us_row(day=date(2024, 2, 1), shares_short=True), "shares_short = True is not an integer"),
    "text count": (us_row(day=date(2024, 2, 1), shares_short="12"), "shares_short = '12' is not an integer"),
    "code of a str subclass": (us_row(code=Ticker("US.MSFT"), day=date(2024, 2, 1)), "code is a Ticker, not a str"),
}


@pytest.mark.parametrize("size", ["page", "large"])
@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_invalid_row_rolls_back_the_whole_batch(warehouse_engine: sa.Engine, case: str, size: str) -> None:
    bad, message = BAD_ROWS[case]
    good = us_history("US.AAPL", 10 if size == "page" else LARGE)
    with pytest.raises(InvalidRowError) as caught:
        upsert_batch(warehouse_engine, [*good, bad])
    assert message in str(caught.value)
    assert bad.code in str(caught.value)
    assert caught.value.code == bad.code
    assert stored(warehouse_engine) == []


def test_invalid_row_error_names_code_date_and_field() -> None:
    error = InvalidRowError("US.AAPL", date(2024, 2, 1), "shares_short = -1 is negative")
    assert str(error) == "invalid short-interest row US.AAPL 2024-02-01: shares_short = -1 is negative"
    assert isinstance(error, ValueError)


def test_mixed_markets_are_refused(warehouse_engine: sa.Engine) -> None:
    with pytest.raises(InvalidRowError, match="mixes markets"):
        upsert_batch(warehouse_engine, [us_row(), hk_row()])
    with pytest.raises(InvalidRowError, match="expected UsShortInterestRow"):
        upsert_batch(warehouse_engine, [us_row(), ("US.AAPL", FIRST_DAY)])  # type: ignore[list-item]
    assert stored(warehouse_engine) == [] and stored(warehouse_engine, hk_short_interest) == []


def test_bad_batch_leaves_earlier_data_alone(warehouse_engine: sa.Engine) -> None:
    upsert_batch(warehouse_engine, us_history("US.AAPL", 3))
    before = stored(warehouse_engine)
    revised = [replace(r, close_price=1.0) for r in us_history("US.AAPL", 3)]
    with pytest.raises(InvalidRowError):
        upsert_batch(warehouse_engine, [*revised, us_row(shares_short=-5)])
    assert stored(warehouse_engine) == before


def _concurrent_writer(url: str, seed: int, rounds: int, start: Any, failures: Any) -> None:
    warehouse_engine = create_engine_for(url)
    try:
        start.wait(timeout=60)
        for round_no in range(rounds):
            # Overlapping ranges of the same code, values that differ per writer and round: every round
            # inserts some keys, updates others, and fights the other writer for the same rows.
            offset = (seed * 3 + round_no) % 7
            page = us_history(
                "US.RACE", 40, start=FIRST_DAY + timedelta(days=offset), shares_short=seed * 1000 + round_no
            )
            upsert_batch(warehouse_engine, page)
            large = us_history("US.LARGE", LARGE, start=FIRST_DAY + timedelta(days=offset))
            upsert_batch(warehouse_engine, [replace(r, close_price=float(seed + round_no)) for r in large])
    except Exception as exc:  # reported to the parent, which fails the test with it
        failures.put(f"writer {seed}: {type(exc).__name__}: {exc}")
    finally:
        warehouse_engine.dispose()


@pytest.mark.slow
def test_concurrent_writers_end_with_one_row_per_key(database_url: str) -> None:
    upgrade(database_url)
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    failures = context.Queue()
    writers = [
        context.Process(target=_concurrent_writer, args=(database_url, seed, 3, start, failures)) for seed in (1, 2)
    ]
    for process in writers:
        process.start()
    for process in writers:
        process.join(timeout=240)
    errors = []
    while not failures.empty():
        errors.append(failures.get())
    assert errors == []
    assert [p.exitcode for p in writers] == [0, 0]

    warehouse_engine = create_engine_for(database_url)
    try:
        with warehouse_engine.connect() as conn:
            keys = conn.execute(
                sa.select(
                    us_short_interest.c.code,
                    sa.func.count(),
                    sa.func.count(sa.distinct(us_short_interest.c.trade_date)),
                )
                .group_by(us_short_interest.c.code)
                .order_by(us_short_interest.c.code)
            ).all()
    finally:
        warehouse_engine.dispose()
    max_offset = max((seed * 3 + r) % 7 for seed in (1, 2) for r in range(3))
    assert [tuple(k) for k in keys] == [
        ("US.LARGE", LARGE + max_offset, LARGE + max_offset),
        ("US.RACE", 40 + max_offset, 40 + max_offset),
    ]


def test_large_batch_with_nulls_and_mixed_code_lengths_round_trips(warehouse_engine: sa.Engine) -> None:
    # Rows of several code lengths and NULL patterns, shuffled: every value is stored exactly.
    nullable = ("shares_short", "short_percent", "avg_daily_share_volume", "days_to_cover", "close_price")
    rows = []
    for code in ("US.A", "US.BRK.B", "US.GOOGL", "US.ZZZZZZZZZZ"):
        for i, row in enumerate(us_history(code, LARGE // 3)):
            rows.append(replace(row, **{nullable[i % 7]: None}) if i % 7 < len(nullable) else row)
    rows.reverse()
    assert upsert_batch(warehouse_engine, rows) == UpsertResult(inserted=len(rows))
    expected = sorted(
        (
            r.code,
            r.trade_date,
            r.timestamp,
            r.shares_short,
            r.short_percent,
            r.avg_daily_share_volume,
            r.days_to_cover,
            r.close_price,
            r.last_close_price,
        )
        for r in rows
    )
    got = [
        (
            s.code,
            s.trade_date,
            s.source_timestamp,
            s.shares_short,
            s.short_percent,
            s.avg_daily_share_volume,
            s.days_to_cover,
            s.close_price,
            s.last_close_price,
        )
        for s in stored(warehouse_engine)
    ]
    assert got == expected
    assert upsert_batch(warehouse_engine, rows) == UpsertResult(unchanged=len(rows))


def test_revisions_follow_is_distinct_from_and_stamp_only_real_changes(warehouse_engine: sa.Engine) -> None:
    big = 2**63 - 1
    old = us_history("US.OLD", 40)
    old[5] = replace(old[5], shares_short=None)
    old[6] = replace(old[6], short_percent=0.0)
    outside = us_history("US.OLD", 5, start=FIRST_DAY - timedelta(days=10))  # stored, not in the re-load
    upsert_batch(warehouse_engine, [*outside, *old[:-10]])
    before = {(r.code, r.trade_date): r for r in stored(warehouse_engine)}
    reload = [
        *old[:5],
        old[5],  # NULL against NULL: not distinct
        replace(old[6], short_percent=-0.0),  # -0.0 = 0.0 for a double: not distinct
        replace(old[7], shares_short=None),  # NULL against a value: distinct
        replace(old[8], close_price=math.nextafter(old[8].close_price, math.inf)),  # one ulp
        replace(old[9], avg_daily_share_volume=big),  # the largest BIGINT
        *old[10:],  # the last ten are new keys of a stored code
        *us_history("US.NEW", 5),  # a code with no stored rows
    ]
    assert upsert_batch(warehouse_engine, reload) == UpsertResult(inserted=15, updated=3, unchanged=27)
    after = {(r.code, r.trade_date): r for r in stored(warehouse_engine)}
    assert len(after) == len(outside) + len(old) + 5
    for row in outside:
        assert after[row.code, row.trade_date] == before[row.code, row.trade_date]
    for i, row in enumerate(old[:-10]):
        now, then = after[row.code, row.trade_date], before[row.code, row.trade_date]
        assert now.first_loaded_at == then.first_loaded_at
        assert (now.updated_at > then.updated_at) == (i in (7, 8, 9))
    assert math.copysign(1.0, after["US.OLD", old[6].trade_date].short_percent) == 1.0  # 0.0 kept, not -0.0
    assert after["US.OLD", old[9].trade_date].avg_daily_share_volume == big
    assert upsert_batch(warehouse_engine, reload) == UpsertResult(unchanged=len(reload))


def test_callers_transaction_sees_its_own_writes_and_survives_a_bad_batch(warehouse_engine: sa.Engine) -> None:
    rows = us_history("US.TXN", 60)
    with warehouse_engine.begin() as conn:
        assert upsert_rows(conn, rows) == UpsertResult(inserted=60)
        assert upsert_rows(conn, rows) == UpsertResult(unchanged=60)
        bad = replace(rows[-3], close_price=math.nan)  # its key is stored and every other field equal
        with pytest.raises(InvalidRowError, match="close_price = nan") as caught:
            upsert_rows(conn, [replace(r, close_price=2.0) for r in rows[:10]] + [*rows[10:-3], bad])
        assert caught.value.trade_date == bad.trade_date
        revised = [replace(r, close_price=3.0) if i % 4 == 0 else r for i, r in enumerate(rows)]
        assert upsert_rows(conn, revised) == UpsertResult(updated=15, unchanged=45)
    assert [r.close_price for r in stored(warehouse_engine)] == [r.close_price for r in revised]
