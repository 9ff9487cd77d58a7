"""What analysts and the crawler read back: the views, crawl state, newest dates and row counts."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from pipelines.warehouse import (
    get_crawl_state,
    list_crawl_states,
    mark_attempt,
    mark_error,
    mark_success,
    newest_trade_date,
    row_counts,
    save_cursor,
    upsert_batch,
    upsert_rows,
)
from proto_client.errors import InvalidCodeError
from tests.test_warehouse_upsert import FIRST_DAY, hk_row, us_row


@pytest.fixture
def loaded(warehouse_engine: sa.Engine) -> sa.Engine:
    days = [FIRST_DAY + timedelta(days=7 * i) for i in range(4)]
    upsert_batch(
        warehouse_engine,
        [us_row("US.AAPL", day, shares_short=shares) for day, shares in zip(days, [100, 150, 0, 50], strict=True)],
    )
    upsert_batch(warehouse_engine, [us_row("US.MSFT", days[0], shares_short=None)])
    upsert_batch(
        warehouse_engine,
        [
            hk_row("HK.00700", days[0], aggregated_short=1000, aggregated_short_ratio=0.5),
            hk_row("HK.00700", days[1], aggregated_short=800, aggregated_short_ratio=0.4),
        ],
    )
    return warehouse_engine


def query(warehouse_engine: sa.Engine, sql: str) -> list[tuple]:
    with warehouse_engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.text(sql))]


def as_date(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def test_short_interest_view_unifies_both_markets(loaded: sa.Engine) -> None:
    rows = query(
        loaded,
        "SELECT market, code, trade_date, short_shares, short_percent FROM short_interest "
        "WHERE trade_date = '2024-01-02' ORDER BY code",
    )
    assert [(r[0], r[1], as_date(r[2]), r[3], r[4]) for r in rows] == [
        ("HK", "HK.00700", FIRST_DAY, 1000, 0.5),
        ("US", "US.AAPL", FIRST_DAY, 100, 0.81),
        ("US", "US.MSFT", FIRST_DAY, None, 0.81),
    ]
    (count,) = query(loaded, "SELECT count(*) FROM short_interest")
    assert count == (7,)


def test_latest_view_has_one_row_per_code(loaded: sa.Engine) -> None:
    rows = query(loaded, "SELECT code, trade_date, short_shares FROM short_interest_latest ORDER BY code")
    assert [(c, as_date(d), s) for c, d, s in rows] == [
        ("HK.00700", FIRST_DAY + timedelta(days=7), 800),
        ("US.AAPL", FIRST_DAY + timedelta(days=21), 50),
        ("US.MSFT", FIRST_DAY, None),
    ]


def test_changes_view_compares_with_the_previous_report(loaded: sa.Engine) -> None:
    rows = query(
        loaded,
        "SELECT code, trade_date, previous_trade_date, previous_short_shares, short_shares_change, "
        "short_shares_change_percent FROM short_interest_changes ORDER BY code, trade_date",
    )
    got = [(c, as_date(d), p and as_date(p), ps, ch, pct) for c, d, p, ps, ch, pct in rows]
    week = timedelta(days=7)
    assert got == [
        ("HK.00700", FIRST_DAY, None, None, None, None),
        ("HK.00700", FIRST_DAY + week, FIRST_DAY, 1000, -200, -20.0),
        ("US.AAPL", FIRST_DAY, None, None, None, None),
        ("US.AAPL", FIRST_DAY + week, FIRST_DAY, 100, 50, 50.0),
        ("US.AAPL", FIRST_DAY + 2 * week, FIRST_DAY + week, 150, -150, -100.0),
        # The previous report is 0: the change is known, its percentage is not.
        ("US.AAPL", FIRST_DAY + 3 * week, FIRST_DAY + 2 * week, 0, 50, None),
        ("US.MSFT", FIRST_DAY, None, None, None, None),
    ]


def test_newest_trade_date_and_row_counts(loaded: sa.Engine) -> None:
    with loaded.connect() as conn:
        assert newest_trade_date(conn, "US.AAPL") == FIRST_DAY + timedelta(days=21)
        assert newest_trade_date(conn, "HK.00700") == FIRST_DAY + timedelta(days=7)
        assert newest_trade_date(conn, "US.TSLA") is None
        assert row_counts(conn) == {"HK.00700": 2, "US.AAPL": 4, "US.MSFT": 1}
        with pytest.raises(InvalidCodeError):
            newest_trade_date(conn, "AAPL")


def test_crawl_state_lifecycle(warehouse_engine: sa.Engine) -> None:
    with warehouse_engine.begin() as conn:
        assert get_crawl_state(conn, "US.AAPL") is None
        mark_attempt(conn, "US.AAPL")
    with warehouse_engine.begin() as conn:
        state = get_crawl_state(conn, "US.AAPL")
        assert state is not None and state.market == "US" and state.last_attempt_at is not None
        assert state.last_attempt_at.utcoffset() == timedelta(0)
        assert (state.full_crawl_cursor, state.last_success_at, state.newest_trade_date) == (None, None, None)

        save_cursor(conn, "US.AAPL", "1772121600")
        started = get_crawl_state(conn, "US.AAPL").full_crawl_started_at
        assert started is not None
        save_cursor(conn, "US.AAPL", "1770000000")
        state = get_crawl_state(conn, "US.AAPL")
        assert (state.full_crawl_cursor, state.full_crawl_started_at) == ("1770000000", started)

        mark_error(conn, "US.AAPL", "gateway went away")
        state = get_crawl_state(conn, "US.AAPL")
        assert state.last_error == "gateway went away" and state.last_error_at is not None
        assert state.full_crawl_cursor == "1770000000"  # an error keeps the resume point

        save_cursor(conn, "US.AAPL", None)
        mark_success(conn, "US.AAPL", date(2024, 3, 1))
        state = get_crawl_state(conn, "US.AAPL")
        assert (state.full_crawl_cursor, state.full_crawl_started_at) == (None, None)
        assert (state.last_error, state.last_error_at) == (None, None)
        assert state.newest_trade_date == date(2024, 3, 1) and state.last_success_at is not None

        mark_success(conn, "US.AAPL", None)  # nothing new loaded: the newest date stays
        assert get_crawl_state(conn, "US.AAPL").newest_trade_date == date(2024, 3, 1)

        mark_error(conn, "HK.00700", "x" * 10_000)
        assert len(get_crawl_state(conn, "HK.00700").last_error) <= 4_000
        assert [(s.code, s.market) for s in list_crawl_states(conn)] == [("HK.00700", "HK"), ("US.AAPL", "US")]


def test_crawl_state_refuses_bad_codes_and_cursors(warehouse_engine: sa.Engine) -> None:
    with warehouse_engine.begin() as conn:
        with pytest.raises(InvalidCodeError):
            mark_attempt(conn, "SH.600000")
        with pytest.raises(ValueError, match="non-empty page key"):
            save_cursor(conn, "US.AAPL", "")


def test_a_page_and_its_cursor_commit_or_roll_back_together(warehouse_engine: sa.Engine) -> None:
    with pytest.raises(RuntimeError), warehouse_engine.begin() as conn:
        upsert_rows(conn, [us_row("US.AAPL")])
        save_cursor(conn, "US.AAPL", "1700000000")
        raise RuntimeError("interrupted before commit")
    with warehouse_engine.connect() as conn:
        assert get_crawl_state(conn, "US.AAPL") is None
        assert row_counts(conn) == {}
