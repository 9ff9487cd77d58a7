"""Each code's newest report as known at a moment (PostgreSQL's short_interest_latest_as_of), read in one pass over
its market's newest report dates with a code-by-code look-up for the rest (migration 0010), must return what
revision 0007's code-by-code function returns, at every moment, and the downgrade must bring 0007's back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from migrations.history import revision_module
from pipelines.warehouse import upsert_batch
from tests.test_warehouse_as_of import _migrate, pause
from tests.test_warehouse_upsert import hk_row, us_row

_0007 = revision_module("0007_point_in_time.py")
FUNCTION = "short_interest_latest_as_of"
REFERENCE = "reference_latest_as_of"
BEFORE_0010 = "0009_loader_role"
HISTORY_INDEXES = {"us_short_interest_history": "trade_date", "hk_short_interest_history": "trade_date"}


def us_days(first: date, last: date) -> list[date]:
    """FINRA's settlement days as the tests write them: the 15th and the last day of each month."""
    days, month = [], first.replace(day=1)
    while month <= last:
        following = (month + timedelta(days=32)).replace(day=1)
        days += [d for d in (month.replace(day=15), following - timedelta(days=1)) if first <= d <= last]
        month = following
    return days


def fridays(first: date, last: date) -> list[date]:
    return [first + timedelta(days=7 * i) for i in range((last - first).days // 7 + 1)]


def newest(engine: sa.Engine, function: str, moment: datetime) -> set[tuple[Any, ...]]:
    with engine.connect() as conn:
        return {tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {function}(:m)"), {"m": moment})}


@pytest.fixture
def written(pg_engine: sa.Engine) -> Iterator[tuple[sa.Engine, list[datetime]]]:
    """Codes the window answers, codes it leaves to the look-up (stopped reporting, removed), revisions and hand
    fixes, with revision 0007's function beside the current one; yields the engine and the moments between
    the writes."""
    first, newest_day = date(2024, 1, 1), date(2024, 6, 28)
    upsert_batch(
        pg_engine,
        [us_row("US.AAPL", d, shares_short=100 + i) for i, d in enumerate(us_days(first, newest_day))]
        + [us_row("US.MSFT", d, shares_short=200 + i) for i, d in enumerate(us_days(first, date(2024, 3, 15)))]
        + [us_row("US.GONE", d) for d in us_days(first, date(2024, 2, 29))],
    )
    upsert_batch(
        pg_engine,
        [hk_row("HK.00700", d, aggregated_short=500 + i) for i, d in enumerate(fridays(date(2024, 1, 5), newest_day))]
        + [hk_row("HK.00005", d) for d in fridays(date(2024, 1, 5), date(2024, 2, 23))],
    )
    moments = [pause()]
    with pg_engine.begin() as conn:
        conn.execute(sa.text("UPDATE us_short_interest SET shares_short = 1 WHERE trade_date >= '2024-06-01'"))
        conn.execute(sa.text("UPDATE hk_short_interest SET aggregated_short = 2 WHERE code = 'HK.00005'"))
    moments.append(pause())
    with pg_engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM us_short_interest WHERE code = 'US.GONE'"))
        conn.execute(sa.text("DELETE FROM hk_short_interest WHERE trade_date = :d"), {"d": newest_day})
    moments.append(pause())
    upsert_batch(pg_engine, [hk_row("HK.00700", newest_day, aggregated_short=9)])
    moments.append(pause())
    with pg_engine.begin() as conn:
        reference = _0007._function_statement(FUNCTION, _0007._pg_latest_as_of)
        conn.execute(sa.text(reference.replace(f"FUNCTION {FUNCTION}(", f"FUNCTION {REFERENCE}(")))
    yield pg_engine, moments


def test_the_one_pass_read_returns_what_the_code_by_code_look_up_returns(
    written: tuple[sa.Engine, list[datetime]],
) -> None:
    engine, between_writes = written
    # The end of every third day from before the first publication to after the last, all before any row was
    # recorded (so each report comes back backfilled), and the moments between the writes.
    days = [date(2024, 1, 10) + timedelta(days=3 * i) for i in range(75)]
    moments = [datetime.combine(d, time.max, UTC) for d in days] + between_writes
    answered = 0
    for moment in moments:
        read = newest(engine, FUNCTION, moment)
        assert read == newest(engine, REFERENCE, moment), moment
        answered += len(read)
    assert answered > 300  # most moments know several codes

    # As of now, each kind of code from the path meant for it, with the values held now.
    now = {(r[1], r[2], r[3]) for r in newest(engine, FUNCTION, datetime.now(UTC))}
    assert now == {
        ("US.AAPL", date(2024, 6, 15), 1),  # revised
        ("US.MSFT", date(2024, 3, 15), 204),  # stopped reporting three months before the newest report
        ("HK.00700", date(2024, 6, 28), 9),  # removed, then loaded again
        ("HK.00005", date(2024, 2, 23), 2),  # hand-fixed, long before the window
    }
    # Before its removal, the removed code was each of its reports' newest as known then.
    assert ("US.GONE", date(2024, 2, 29)) in {(r[1], r[2]) for r in newest(engine, FUNCTION, between_writes[1])}


def _indexed(engine: sa.Engine) -> dict[str, bool]:
    inspector = sa.inspect(engine)
    return {
        table: any(i["column_names"] == [column] for i in inspector.get_indexes(table))
        for table, column in HISTORY_INDEXES.items()
    }


def test_downgrade_restores_the_code_by_code_function_and_drops_the_history_indexes(
    written: tuple[sa.Engine, list[datetime]],
) -> None:
    engine, moments = written
    assert _indexed(engine) == dict.fromkeys(HISTORY_INDEXES, True)
    _migrate(engine, BEFORE_0010, down=True)
    assert _indexed(engine) == dict.fromkeys(HISTORY_INDEXES, False)
    with engine.connect() as conn:
        source = {
            name: conn.execute(sa.text("SELECT prosrc FROM pg_proc WHERE proname = :n"), {"n": name}).scalar_one()
            for name in (FUNCTION, REFERENCE)
        }
    assert source[FUNCTION] == source[REFERENCE]
    _migrate(engine, "head")
    assert _indexed(engine) == dict.fromkeys(HISTORY_INDEXES, True)
    assert newest(engine, FUNCTION, moments[0]) == newest(engine, REFERENCE, moments[0])
