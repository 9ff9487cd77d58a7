"""The analyst views against their first definitions, kept here as the reference, on PostgreSQL and SQLite.

Whatever writes the rows (the loader's page and COPY paths, hand fixes, bulk SQL, deletes, TRUNCATE), the
views answer exactly what the window definitions of revision 0001 answer over the same rows, filtered or
not, and the newest-date table they lean on names each code's newest stored report.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from pipelines.warehouse import upgrade, upsert_batch, upsert_rows
from pipelines.warehouse.migrate import alembic_config
from pipelines.warehouse.schema import KEY_COLUMNS, table_for, value_columns
from proto_client.records import ShortInterestRow
from tests.test_warehouse_upsert import FIRST_DAY, hk_row, us_row

REFERENCE: dict[str, str] = {
    "short_interest_latest": """
        SELECT market, code, trade_date, short_shares, short_percent, close_price, last_close_price, updated_at
          FROM (SELECT s.*, ROW_NUMBER() OVER (PARTITION BY code ORDER BY trade_date DESC) AS recency
                  FROM short_interest s) ranked
         WHERE recency = 1
    """,
    "short_interest_changes": """
        SELECT market, code, trade_date, short_shares, short_percent,
               previous_trade_date, previous_short_shares,
               short_shares - previous_short_shares AS short_shares_change,
               CASE WHEN previous_short_shares = 0 THEN NULL
                    ELSE CAST(short_shares - previous_short_shares AS DOUBLE PRECISION) * 100
                         / previous_short_shares
               END AS short_shares_change_percent,
               close_price, last_close_price, updated_at
          FROM (SELECT s.*,
                       LAG(trade_date) OVER (PARTITION BY code ORDER BY trade_date) AS previous_trade_date,
                       LAG(short_shares) OVER (PARTITION BY code ORDER BY trade_date) AS previous_short_shares
                  FROM short_interest s) with_previous
    """,
}
# The reference's columns: the views also carry `name` (migration 0008), tested in tests/test_securities.py.
COLUMNS = {
    "short_interest_latest": "market, code, trade_date, short_shares, short_percent, close_price, last_close_price, "
    "updated_at",
    "short_interest_changes": "market, code, trade_date, short_shares, short_percent, previous_trade_date, "
    "previous_short_shares, short_shares_change, short_shares_change_percent, close_price, last_close_price, "
    "updated_at",
}
WEEK = timedelta(days=7)
# Days between one code's reports: next to, at and past a month, and years.
GAPS = [1, 30, 31, 32, 45, 400, 31, 29, 1_500]
PREVIOUS_HEAD = "0002_rate_limiter"
# The revision before the bounded previous-report lookup (0005), whose definitions its downgrade restores.
BEFORE_BOUNDED_LOOKUP = "0004_crawl_state_gateway"


def rows_of(conn: sa.Connection, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    return sorted((tuple(row) for row in conn.execute(sa.text(sql), params)), key=repr)


def spread(values: list[Any], count: int = 8) -> list[Any]:
    """At most `count` of `values`, spread over their sorted order, first and last included."""
    ordered = sorted(values)
    if len(ordered) <= count:
        return ordered
    return [ordered[round(i * (len(ordered) - 1) / (count - 1))] for i in range(count)]


def assert_views_match_reference(engine: sa.Engine) -> None:
    """Every view equals its reference: whole, for each stored date, for each code, and as movers."""
    with engine.connect() as conn:
        dates = spread(conn.execute(sa.text("SELECT DISTINCT trade_date FROM short_interest")).scalars().all())
        codes = spread(conn.execute(sa.text("SELECT DISTINCT code FROM short_interest")).scalars().all())
        newest = rows_of(conn, "SELECT code, trade_date FROM short_interest_newest")
        assert newest == rows_of(conn, "SELECT code, max(trade_date) FROM short_interest GROUP BY code")
        for view, reference in REFERENCE.items():
            assert rows_of(conn, f"SELECT {COLUMNS[view]} FROM {view}") == rows_of(conn, reference), view
            for day in [*dates, date(1999, 1, 1)]:
                where = "WHERE trade_date = :day"
                got = rows_of(conn, f"SELECT {COLUMNS[view]} FROM {view} {where}", day=day)
                assert got == rows_of(conn, f"SELECT * FROM ({reference}) r {where}", day=day), (view, day)
            for code in [*codes, "US.NONE"]:
                where = "WHERE code = :code"
                got = rows_of(conn, f"SELECT {COLUMNS[view]} FROM {view} {where}", code=code)
                assert got == rows_of(conn, f"SELECT * FROM ({reference}) r {where}", code=code), (view, code)
        movers = (
            "SELECT code, short_shares_change_percent FROM {} WHERE trade_date = :day "
            "AND short_shares_change_percent IS NOT NULL ORDER BY short_shares_change_percent DESC, code LIMIT 3"
        )
        for day in dates:
            got = conn.execute(sa.text(movers.format("short_interest_changes")), {"day": day}).all()
            expected = conn.execute(sa.text(movers.format(f"({REFERENCE['short_interest_changes']}) r")), {"day": day})
            assert got == expected.all(), day


@pytest.fixture
def history(warehouse_engine: sa.Engine) -> sa.Engine:
    """Revisions, gaps, zero and unknown shares, a code with one report, pages loaded newest first."""
    aapl = [us_row("US.AAPL", FIRST_DAY + i * WEEK, shares_short=100 + 10 * i) for i in range(12)]
    del aapl[5:7]  # a gap of two reports
    aapl[3] = replace(aapl[3], shares_short=0)  # the next report's change percentage is unknown
    aapl[8] = replace(aapl[8], shares_short=None)
    upsert_batch(warehouse_engine, aapl[6:])  # the newer page first, as a backward crawl loads them
    upsert_batch(warehouse_engine, aapl[:6])
    upsert_batch(warehouse_engine, [replace(aapl[1], shares_short=777), replace(aapl[-1], shares_short=5)])
    upsert_batch(warehouse_engine, [us_row("US.ONCE", FIRST_DAY + 2 * WEEK, shares_short=42)])
    hk = [hk_row("HK.00700", FIRST_DAY + i * WEEK, aggregated_short=1000 - 50 * i) for i in range(8)]
    for row in (*hk[4:], *hk[:4]):  # one row at a time, out of order
        upsert_batch(warehouse_engine, [row])
    upsert_batch(warehouse_engine, [hk_row("HK.00005", FIRST_DAY + WEEK * 3, aggregated_short=0)])
    upsert_batch(warehouse_engine, [hk_row("HK.00005", FIRST_DAY + WEEK * 1, aggregated_short=9)])
    # Gaps on both sides of a month (where the previous report is first looked for), loaded newest first.
    gaps = [us_row("US.GAPS", FIRST_DAY + timedelta(days=sum(GAPS[:i])), shares_short=i) for i in range(len(GAPS) + 1)]
    upsert_batch(warehouse_engine, gaps[3:])
    upsert_batch(warehouse_engine, gaps[:3])
    return warehouse_engine


def test_views_match_the_reference_after_loading(history: sa.Engine) -> None:
    assert_views_match_reference(history)


def test_views_follow_hand_fixes_at_once(history: sa.Engine) -> None:
    statements = [
        # A report moved to a later date, past the code's newest one; then one moved back before it.
        "UPDATE us_short_interest SET trade_date = '2024-06-04' WHERE code = 'US.AAPL' AND trade_date = '2024-01-16'",
        "UPDATE us_short_interest SET trade_date = '2023-12-26' WHERE code = 'US.AAPL' AND trade_date = '2024-06-04'",
        # The newest report deleted; a code's only report deleted; a code renamed.
        "DELETE FROM us_short_interest WHERE code = 'US.AAPL' AND trade_date = '2024-03-19'",
        "DELETE FROM us_short_interest WHERE code = 'US.ONCE'",
        "UPDATE hk_short_interest SET code = 'HK.09988' WHERE code = 'HK.00005'",
        # A bulk import by SQL, older and newer than what is stored, then a bulk revision and a bulk delete.
        "INSERT INTO hk_short_interest (code, trade_date, source_timestamp, aggregated_short) VALUES "
        "('HK.00700', '2024-03-05', 0, 90), ('HK.00700', '2024-03-12', 0, 100), ('HK.00700', '2023-12-26', 0, 1), "
        "('HK.00001', '2024-03-12', 0, 3)",
        "UPDATE hk_short_interest SET aggregated_short = aggregated_short + 1 WHERE code = 'HK.00700'",
        # A revision across every code of a market, the newest reports among them.
        "UPDATE us_short_interest SET shares_short = shares_short * 2, close_price = 1.5",
        "DELETE FROM hk_short_interest WHERE trade_date > '2024-02-01' AND code IN ('HK.00700', 'HK.00001')",
    ]
    for statement in statements:
        with history.begin() as conn:
            conn.execute(sa.text(statement))
        assert_views_match_reference(history)
    with history.begin() as conn:
        conn.execute(sa.text("DELETE FROM us_short_interest"))
    assert_views_match_reference(history)


def test_views_follow_large_batches(history: sa.Engine) -> None:
    """A backfill of a never-stored code, then a revision of part of it together with newer reports."""
    days = [FIRST_DAY - timedelta(days=i) for i in range(2_500)]
    bulk = [us_row("US.BULK", day, shares_short=i * 3 % 1000) for i, day in enumerate(days)]
    upsert_batch(history, bulk)
    assert_views_match_reference(history)
    revised = [replace(row, shares_short=7) for row in bulk[:1_500]]
    newer = [us_row("US.AAPL", FIRST_DAY + timedelta(days=400 + i)) for i in range(3)]
    upsert_batch(history, [*revised, *newer])
    assert_views_match_reference(history)


def test_views_follow_copy(pg_engine: sa.Engine) -> None:
    """A bulk import with COPY, as a data engineer would load a file: its rows show at once."""
    upsert_batch(pg_engine, [us_row("US.AAPL", FIRST_DAY, shares_short=10)])
    with pg_engine.begin() as conn:
        cursor = conn.connection.driver_connection.cursor()
        columns = "code, trade_date, source_timestamp, shares_short"
        with cursor.copy(f"COPY us_short_interest ({columns}) FROM STDIN") as copy:
            for n in range(300):
                copy.write_row((f"US.C{n % 7}", FIRST_DAY + timedelta(days=n - 150), 0, n))
    with pg_engine.connect() as conn:
        newest = conn.execute(sa.text("SELECT count(*) FROM short_interest_newest")).scalar_one()
    assert newest == 8
    assert_views_match_reference(pg_engine)


def test_truncate_empties_the_newest_dates_of_its_market(pg_engine: sa.Engine) -> None:
    upsert_batch(pg_engine, [us_row("US.AAPL"), us_row("US.MSFT")])
    upsert_batch(pg_engine, [hk_row("HK.00700")])
    with pg_engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE us_short_interest"))
    with pg_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT code FROM short_interest_newest")).scalars().all() == ["HK.00700"]
    assert_views_match_reference(pg_engine)


@pytest.fixture
def writer_role(pg_engine: sa.Engine) -> Iterator[str]:
    """A role that may write the data tables and nothing else (roles are cluster-wide: a unique name)."""
    role = f"si_writer_{uuid.uuid4().hex[:8]}"
    with pg_engine.begin() as conn:
        conn.execute(sa.text(f"CREATE ROLE {role} NOLOGIN"))
        conn.execute(sa.text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON us_short_interest TO {role}"))
    yield role
    with pg_engine.begin() as conn:
        conn.execute(sa.text(f"DROP OWNED BY {role}"))
        conn.execute(sa.text(f"DROP ROLE {role}"))


def test_a_writer_without_rights_on_the_newest_dates_still_keeps_them(pg_engine: sa.Engine, writer_role: str) -> None:
    with pg_engine.begin() as conn:
        conn.execute(sa.text(f"SET LOCAL ROLE {writer_role}"))
        conn.execute(
            sa.text(
                "INSERT INTO us_short_interest (code, trade_date, source_timestamp, shares_short) "
                "VALUES ('US.AAPL', '2024-01-02', 0, 1), ('US.AAPL', '2024-01-09', 0, 2)"
            )
        )
        conn.execute(sa.text("DELETE FROM us_short_interest WHERE trade_date = '2024-01-09'"))
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), conn.begin_nested():
            conn.execute(sa.text("DELETE FROM short_interest_newest"))
    assert_views_match_reference(pg_engine)


def insert_as_before_0007(engine: sa.Engine, row: ShortInterestRow) -> None:
    """A row written as a loader of a revision before published_on did (the upsert of today sets it)."""
    table = table_for(row.market)
    fields = {"source_timestamp": row.timestamp}
    values = {name: fields.get(name, getattr(row, name, None)) for name in (*KEY_COLUMNS, *value_columns(table))}
    with engine.begin() as conn:
        conn.execute(sa.insert(table).values(values))


def _migrate(engine: sa.Engine, target: str, *, down: bool) -> None:
    with engine.connect() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(config, target)


def test_downgrade_restores_the_window_views_and_upgrade_fills_the_newest_dates(history: sa.Engine) -> None:
    _migrate(history, PREVIOUS_HEAD, down=True)
    inspector = sa.inspect(history)
    assert "short_interest_newest" not in inspector.get_table_names()
    assert not [ix for ix in inspector.get_indexes("us_short_interest") if ix["name"].endswith("_trade_date")]
    with history.connect() as conn:
        for view, reference in REFERENCE.items():
            definition = rows_of(conn, f"SELECT {COLUMNS[view]} FROM {view}")
            assert definition == rows_of(conn, reference), view
    # Written while the triggers are gone, then picked up when the newest dates are filled anew.
    insert_as_before_0007(history, us_row("US.AAPL", FIRST_DAY + 60 * WEEK))
    insert_as_before_0007(history, hk_row("HK.00001"))
    upgrade(history)
    assert_views_match_reference(history)


def test_downgrade_to_the_unbounded_lookup_keeps_the_views_exact(history: sa.Engine) -> None:
    _migrate(history, BEFORE_BOUNDED_LOOKUP, down=True)
    assert_views_match_reference(history)
    insert_as_before_0007(history, us_row("US.GAPS", FIRST_DAY + timedelta(days=5_000)))
    insert_as_before_0007(history, hk_row("HK.00700", FIRST_DAY + 100 * WEEK, aggregated_short=3))
    with history.begin() as conn:
        conn.execute(sa.text("UPDATE us_short_interest SET shares_short = 11 WHERE code = 'US.GAPS'"))
    assert_views_match_reference(history)
    upgrade(history)
    assert_views_match_reference(history)


_SEQ_SCANS = sa.text("SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = 'hk_short_interest'")


def test_a_long_session_never_scans_a_whole_table_for_a_page(pg_engine: sa.Engine) -> None:
    """A loader's session outlives the tables' size at its start: its pages' triggers must plan for today's."""
    with pg_engine.connect() as conn:
        conn.execute(sa.text("ALTER TABLE hk_short_interest SET (autovacuum_enabled = false)"))  # no ANALYZE
        conn.commit()
        for code in ("HK.00001", "HK.00002"):  # the session's first pages meet an empty table
            upsert_rows(conn, [hk_row(code, FIRST_DAY + week * WEEK) for week in range(50)])
            conn.commit()
        conn.execute(
            sa.text(
                "INSERT INTO hk_short_interest (code, trade_date, source_timestamp, aggregated_short) "
                "SELECT 'HK.' || lpad((10000 + g % 2000)::text, 5, '0'), DATE '1990-01-01' + g / 2000, g, g "
                "FROM generate_series(0, 199999) g"
            )
        )
        conn.commit()
        # A difference within one transaction: the view also holds earlier transactions' counts until the
        # backend reports them (PostgreSQL 15 does so at most once a second).
        scans_before = conn.execute(_SEQ_SCANS).scalar_one()
        upsert_rows(conn, [hk_row("HK.00003", FIRST_DAY + week * WEEK) for week in range(50)])
        scans = conn.execute(_SEQ_SCANS).scalar_one() - scans_before
        conn.commit()
    assert scans == 0, "a page's trigger scanned the whole table"
    with pg_engine.connect() as conn:
        newest = conn.execute(sa.text("SELECT trade_date FROM short_interest_newest WHERE code = 'HK.00003'"))
        assert newest.scalar_one() == FIRST_DAY + 49 * WEEK
