"""The warehouse as it was known at a moment: publication days, every version kept, as-of reads, on both databases.

Revisions come through a real gateway process, hand fixes and bulk SQL straight to the tables; the as-of reads
(the Python reader, and PostgreSQL's SQL functions) must give each report from its publication day on, with
the values held at the moment asked about.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic import command

from pipelines.config import RateLimit, Settings
from pipelines.crawl.crawler import open_crawler
from pipelines.warehouse import create_engine_for, read_short_interest, upgrade, upsert_batch, upsert_rows
from pipelines.warehouse.migrate import alembic_config
from pipelines.warehouse.schema import READER_ROLE, history_for
from proto_client.publication import published_on
from proto_client.security import Market
from proto_client.simulator.demo_data import REVISED_ROWS, rows_for
from tests.support.gateway import GatewayProcess
from tests.test_fetch_export_commands import _run as run_command
from tests.test_warehouse_upsert import hk_row, us_row
from tests.test_warehouse_views import assert_views_match_reference

GATEWAY_AS_OF = date(2026, 5, 15)
CODES = ("HK.00700", "US.AAPL")
SHARES = {Market.US: "shares_short", Market.HK: "aggregated_short"}
BEFORE_0007 = "0006_plan_trigger_statements"


def shares_by_key(frame: pd.DataFrame) -> dict[tuple[str, date], tuple[int, bool]]:
    """(code, trade_date) -> (shares short, backfilled) of an as-of frame."""
    columns = [frame[c] for c in SHARES.values() if c in frame]
    shares = columns[0] if len(columns) == 1 else columns[0].fillna(columns[1])
    return {
        (code, day.date()): (int(value), bool(backfilled))
        for code, day, value, backfilled in zip(
            frame["code"], frame["trade_date"], shares, frame["backfilled"], strict=True
        )
    }


def history_rows(engine: sa.Engine, market: Market) -> list[sa.Row[Any]]:
    table = history_for(market)
    with engine.connect() as conn:
        return list(conn.execute(sa.select(table).order_by(table.c.version_id)))


def pause() -> datetime:
    """A moment strictly between the writes around it (SQLite's trigger clock counts milliseconds)."""
    time.sleep(0.01)
    moment = datetime.now(UTC)
    time.sleep(0.01)
    return moment


def sql_as_of(engine: sa.Engine, moment: datetime, function: str = "short_interest_as_of") -> dict[Any, Any]:
    """PostgreSQL's function: (code, trade_date) -> (short_shares, backfilled)."""
    query = sa.text(f"SELECT code, trade_date, short_shares, backfilled FROM {function}(:moment)")
    with engine.connect() as conn:
        return {(r.code, r.trade_date): (r.short_shares, r.backfilled) for r in conn.execute(query, {"moment": moment})}


def test_a_revision_through_the_gateway_is_read_as_of_a_moment_between_the_loads(
    database_url: str, gateway_factory: Callable[..., GatewayProcess]
) -> None:
    upgrade(database_url)
    for revision in (0, 1):
        gateway = gateway_factory("--rate", "off", "--as-of", GATEWAY_AS_OF.isoformat(), "--revision", str(revision))
        with open_crawler(Settings(gateway.host, gateway.port, RateLimit(1000, 1.0), database_url)) as crawler:
            results = crawler.crawl_codes(CODES)  # a full load, then a weekly refresh
        assert all(r.ok for r in results)
        gateway.stop()
        if revision == 0:
            between = pause()
    assert sum(r.updated for r in results) == REVISED_ROWS * len(CODES)
    assert sum(r.inserted for r in results) == 0

    engine = create_engine_for(database_url)
    try:
        then = shares_by_key(read_short_interest(CODES, as_of=between, engine=engine))
        now = shares_by_key(read_short_interest(CODES, as_of=datetime.now(UTC), engine=engine))
        for moment, read, revision in ((between, then, 0), (datetime.now(UTC), now, 1)):
            expected = {
                (row.code, row.trade_date): (getattr(row, SHARES[row.market]), False)
                for code in CODES
                for row in rows_for(code, GATEWAY_AS_OF, revision)
            }
            assert read == expected
            if engine.dialect.name == "postgresql":
                assert sql_as_of(engine, moment) == expected
        revised = {key for key in then if then[key] != now[key]}
        assert len(revised) == REVISED_ROWS * len(CODES)
        # The refresh that revised 4 rows kept 4 versions, and nothing for the rows it left alone.
        kept = [(r.code, r.trade_date) for m in Market for r in history_rows(engine, m)]
        assert sorted(kept) == sorted(revised)
        with engine.connect() as conn:
            changes = conn.execute(
                sa.text("SELECT code, trade_date, column_name, old_value, new_value FROM short_interest_revisions")
            ).all()
        shares_changes = {
            (code, date.fromisoformat(str(day))): (int(old), int(new))
            for code, day, column, old, new in changes
            if column in SHARES.values()
        }
        assert {key: (then[key][0], now[key][0]) for key in revised} == shares_changes
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("row", "published"),
    [
        # Settled on the Wednesday before Thanksgiving 2023: the 7 NYSE trading days skip the Thursday holiday.
        (us_row("US.AAPL", date(2023, 11, 15)), date(2023, 11, 27)),
        # A month-end settlement date that is a Saturday counts from the Friday before it.
        (us_row("US.AAPL", date(2023, 11, 18)), date(2023, 11, 29)),
        # The SFC's Friday in Lunar New Year 2025 (29-31 January) is closed: the last trading day before it.
        (hk_row("HK.00700", date(2025, 1, 24)), date(2025, 1, 28)),
        # The holiday week's report, as of the Tuesday before the closure, is out the Friday after.
        (hk_row("HK.00700", date(2025, 1, 28)), date(2025, 2, 7)),
    ],
)
def test_a_report_appears_on_its_publication_day_and_not_before(
    warehouse_engine: sa.Engine, row: Any, published: date
) -> None:
    assert published_on(row.market, row.trade_date) == published
    upsert_batch(warehouse_engine, [row])
    table = history_for(row.market).name.removesuffix("_history")
    with warehouse_engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT published_on FROM {table}")).scalar_one() in (published, str(published))
    key = (row.code, row.trade_date)
    for moment, present in (
        (published - timedelta(days=1), False),  # the end of the day before
        (datetime(published.year, published.month, published.day, tzinfo=UTC), True),  # the day's first moment
        (published, True),
    ):
        read = shares_by_key(read_short_interest(as_of=moment, engine=warehouse_engine))
        # Loaded today, long after: the earliest version the warehouse holds, flagged.
        assert read == ({key: (getattr(row, SHARES[row.market]), True)} if present else {}), moment
        if warehouse_engine.dialect.name == "postgresql":
            instant = moment if isinstance(moment, datetime) else datetime.combine(moment, datetime.max.time(), UTC)
            assert sql_as_of(warehouse_engine, instant) == read
            assert sql_as_of(warehouse_engine, instant, "short_interest_latest_as_of") == read


def test_hand_fixes_and_bulk_sql_are_versioned_and_a_delete_keeps_its_values(warehouse_engine: sa.Engine) -> None:
    days = [date(2024, 1, 12), date(2024, 1, 31), date(2024, 2, 15)]
    upsert_batch(warehouse_engine, [us_row("US.AAPL", day, shares_short=100 + i) for i, day in enumerate(days)])
    upsert_batch(warehouse_engine, [hk_row("HK.00700", days[0], aggregated_short=500)])
    loaded = pause()
    with warehouse_engine.begin() as conn:
        conn.execute(sa.text("UPDATE us_short_interest SET shares_short = 1 WHERE trade_date = :d"), {"d": days[0]})
        conn.execute(
            sa.text(
                "INSERT INTO hk_short_interest (code, trade_date, source_timestamp, aggregated_short, published_on) "
                "VALUES ('HK.00700', :d, :ts, 7, :p) ON CONFLICT (code, trade_date) "
                "DO UPDATE SET aggregated_short = excluded.aggregated_short"
            ),
            {"d": days[0], "ts": hk_row("HK.00700", days[0]).timestamp, "p": published_on(Market.HK, days[0])},
        )
    fixed = pause()
    with warehouse_engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM us_short_interest WHERE trade_date = :d"), {"d": days[1]})
    deleted = pause()

    def read(moment: datetime) -> dict[tuple[str, date], tuple[int, bool]]:
        return shares_by_key(read_short_interest(as_of=moment, engine=warehouse_engine))

    aapl = [("US.AAPL", day) for day in days]
    assert read(loaded) == {
        aapl[0]: (100, False),
        aapl[1]: (101, False),
        aapl[2]: (102, False),
        ("HK.00700", days[0]): (500, False),
    }
    assert read(fixed) == {
        aapl[0]: (1, False),
        aapl[1]: (101, False),
        aapl[2]: (102, False),
        ("HK.00700", days[0]): (7, False),
    }
    assert read(deleted) == {aapl[0]: (1, False), aapl[2]: (102, False), ("HK.00700", days[0]): (7, False)}
    if warehouse_engine.dialect.name == "postgresql":
        for moment in (loaded, fixed, deleted):
            assert sql_as_of(warehouse_engine, moment) == read(moment)
        newest = sql_as_of(warehouse_engine, fixed, "short_interest_latest_as_of")
        assert newest == {aapl[2]: (102, False), ("HK.00700", days[0]): (7, False)}

    us = history_rows(warehouse_engine, Market.US)
    assert [(r.trade_date, r.shares_short, r.deleted) for r in us] == [(days[0], 100, False), (days[1], 101, True)]
    assert all(loaded < r.superseded_at for r in us) and us[0].superseded_at < fixed < us[1].superseded_at
    (hk,) = history_rows(warehouse_engine, Market.HK)
    assert (hk.aggregated_short, hk.deleted) == (500, False)
    with warehouse_engine.connect() as conn:
        # The hand fix left updated_at alone; the new version still starts where the old one ended.
        updated_at = conn.execute(
            sa.text("SELECT updated_at FROM us_short_interest WHERE trade_date = :d"), {"d": days[0]}
        )
        assert str(updated_at.scalar_one())[:23] == str(us[0].superseded_at.replace(tzinfo=None))[:23]
        changes = conn.execute(
            sa.text(
                "SELECT code, column_name, old_value, new_value, deleted FROM short_interest_revisions "
                "WHERE column_name IN ('shares_short', 'aggregated_short') ORDER BY code, revised_at"
            )
        ).all()
    assert [tuple(c) for c in changes] == [
        ("HK.00700", "aggregated_short", 500.0, 7.0, False),
        ("US.AAPL", "shares_short", 100.0, 1.0, False),
        ("US.AAPL", "shares_short", 101.0, None, True),
    ]
    assert_views_match_reference(warehouse_engine)


def test_truncate_keeps_every_row_in_history(pg_engine: sa.Engine) -> None:
    upsert_batch(pg_engine, [us_row("US.AAPL", date(2024, 1, 12)), us_row("US.MSFT", date(2024, 1, 12))])
    before = pause()
    with pg_engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE us_short_interest"))
    assert [(r.code, r.deleted) for r in history_rows(pg_engine, Market.US)] == [("US.AAPL", True), ("US.MSFT", True)]
    assert set(shares_by_key(read_short_interest(as_of=before, engine=pg_engine))) == {
        ("US.AAPL", date(2024, 1, 12)),
        ("US.MSFT", date(2024, 1, 12)),
    }
    assert read_short_interest(as_of=datetime.now(UTC), engine=pg_engine).empty
    # Codes that are gone from the tables are still each code's newest report as of before.
    assert set(sql_as_of(pg_engine, before, "short_interest_latest_as_of")) == {
        ("US.AAPL", date(2024, 1, 12)),
        ("US.MSFT", date(2024, 1, 12)),
    }
    assert sql_as_of(pg_engine, datetime.now(UTC), "short_interest_latest_as_of") == {}


def test_a_page_that_revises_nothing_writes_no_history(warehouse_engine: sa.Engine) -> None:
    page = [us_row("US.AAPL", date(2024, 1, 2) + timedelta(days=7 * i), shares_short=1000 + i) for i in range(50)]
    upsert_batch(warehouse_engine, page)
    assert upsert_batch(warehouse_engine, page).unchanged == 50
    assert history_rows(warehouse_engine, Market.US) == []
    revised = [replace(row, shares_short=1) if i in (3, 20, 49) else row for i, row in enumerate(page)]
    assert upsert_batch(warehouse_engine, revised).updated == 3
    kept = history_rows(warehouse_engine, Market.US)
    assert [(r.trade_date, r.shares_short) for r in kept] == [(page[i].trade_date, 1000 + i) for i in (3, 20, 49)]


def _migrate(engine: sa.Engine, target: str, *, down: bool = False) -> None:
    with engine.connect() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(config, target)


def test_migration_fills_published_on_for_stored_rows_and_downgrades(database_url: str) -> None:
    engine = create_engine_for(database_url)
    try:
        _migrate(engine, BEFORE_0007)
        # Settlement dates, a weekend and a holiday, written as the loader of that revision wrote them.
        us_days = [date(2023, 11, 15), date(2023, 11, 18), date(2023, 11, 23), date(2001, 1, 15)]
        hk_days = [date(2025, 1, 24), date(2025, 1, 28), date(2026, 2, 17)]
        with engine.begin() as conn:
            for table, code, days in (
                ("us_short_interest", "US.AAPL", us_days),
                ("hk_short_interest", "HK.00700", hk_days),
            ):
                for day in days:
                    conn.execute(
                        sa.text(f"INSERT INTO {table} (code, trade_date, source_timestamp) VALUES (:c, :d, 0)"),
                        {"c": code, "d": day},
                    )
        upgrade(engine)
        with engine.connect() as conn:
            for market, table in ((Market.US, "us_short_interest"), (Market.HK, "hk_short_interest")):
                stored = conn.execute(sa.text(f"SELECT trade_date, published_on FROM {table}")).all()
                filled = {date.fromisoformat(str(d)): date.fromisoformat(str(p)) for d, p in stored}
                days = us_days if market is Market.US else hk_days
                assert filled == {day: published_on(market, day) for day in days}
        assert history_rows(engine, Market.US) == history_rows(engine, Market.HK) == []

        _migrate(engine, BEFORE_0007, down=True)
        inspector = sa.inspect(engine)
        assert "published_on" not in {c["name"] for c in inspector.get_columns("us_short_interest")}
        assert not {"us_short_interest_history", "hk_short_interest_history"} & set(inspector.get_table_names())
        assert "short_interest_revisions" not in inspector.get_view_names()
        # The newest table's triggers survive the downgrade.
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE us_short_interest SET shares_short = 5 WHERE trade_date = '2023-11-23'"))
            conn.execute(sa.text("DELETE FROM hk_short_interest WHERE trade_date = '2026-02-17'"))
        assert_views_match_reference(engine)
        upgrade(engine)
        assert_views_match_reference(engine)
    finally:
        engine.dispose()


def test_the_sql_function_is_inlined_so_one_code_reads_its_key_range(pg_engine: sa.Engine) -> None:
    upsert_batch(pg_engine, [us_row("US.AAPL", date(2024, 1, 12)), us_row("US.MSFT", date(2024, 1, 12))])
    with pg_engine.connect() as conn:
        conn.execute(sa.text("SET enable_seqscan = off"))  # tables this small would be read whole anyway
        query = "EXPLAIN SELECT * FROM short_interest_as_of(now()) WHERE code = 'US.AAPL' ORDER BY trade_date"
        plan = "\n".join(conn.execute(sa.text(query)).scalars())
    assert "Function Scan" not in plan
    assert "pk_us_short_interest" in plan and "ix_us_short_interest_history_key" in plan
    with pg_engine.begin() as conn:  # the read-only role reads it all
        conn.execute(sa.text(f"SET LOCAL ROLE {READER_ROLE}"))
        for relation in (
            "short_interest_as_of(now())",
            "short_interest_latest_as_of(now())",
            "short_interest_revisions",
        ):
            conn.execute(sa.text(f"SELECT * FROM {relation}")).all()


def test_export_as_of_writes_the_reports_known_then_in_every_format(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    upgrade(database_url)
    engine = create_engine_for(database_url)
    try:
        days = [date(2024, 1, 12), date(2024, 1, 31)]  # published 2024-01-24 and 2024-02-09
        upsert_batch(engine, [us_row("US.AAPL", day, shares_short=100 + i) for i, day in enumerate(days)])
        loaded = pause()
        upsert_batch(engine, [us_row("US.AAPL", days[0], shares_short=1)])
    finally:
        engine.dispose()
    env = {"SHORTINTEREST_DATABASE_URL": database_url}
    for fmt in ("csv", "json", "parquet"):
        out = tmp_path / f"then.{fmt}"
        result = run_command(capsys, env, "export", "--as-of", loaded.isoformat(), "--format", fmt, "-o", str(out))
        assert result.status == 0, result.err
        frame = pd.read_parquet(out) if fmt == "parquet" else pd.read_csv(out) if fmt == "csv" else pd.read_json(out)
        assert list(frame.columns[-3:]) == ["published_on", "version_recorded_at", "backfilled"]
        assert frame["shares_short"].tolist() == [100, 101], fmt
        assert [str(d)[:10] for d in frame["published_on"]] == ["2024-01-24", "2024-02-09"]
        assert frame["backfilled"].tolist() == [False, False]
    early = run_command(capsys, env, "export", "--as-of", "2024-02-08", "--format", "csv")
    assert early.status == 0 and early.out.count("US.AAPL") == 1  # the second report was not out yet
    nothing = run_command(capsys, env, "export", "--as-of", "2024-01-23", "--format", "csv")
    assert nothing.status == 1 and "as of 2024-01-23" in nothing.err
    with pytest.raises(SystemExit) as refused:
        run_command(capsys, env, "export", "--as-of", "2024-02-30", "--format", "csv")
    assert refused.value.code == 2 and "'2024-02-30'" in capsys.readouterr().err


def test_every_reader_agrees_with_a_model_of_the_versions_at_every_moment(warehouse_engine: sa.Engine) -> None:
    """A sequence of writes of every kind, the moments between them, and what each moment must read: the version
    held then, or a report's first version (backfilled) where it was recorded later, or nothing once removed."""
    a = [date(2024, 1, 12), date(2024, 1, 31), date(2024, 2, 15), date(2024, 2, 29)]
    h = [date(2024, 1, 5), date(2024, 1, 12)]
    hk_moved = {"d": h[1], "p": published_on(Market.HK, h[1]), "old": h[0]}
    writes: list[tuple[dict[tuple[str, date], int | None], Callable[[sa.Connection], None]]] = [
        (
            {("US.AAPL", a[0]): 100, ("US.AAPL", a[1]): 101, ("US.AAPL", a[2]): 102, ("HK.00700", h[0]): 500},
            lambda c: (
                upsert_batch_in(c, [us_row("US.AAPL", d, shares_short=100 + i) for i, d in enumerate(a[:3])]),
                upsert_batch_in(c, [hk_row("HK.00700", h[0], aggregated_short=500)]),
            ),
        ),
        ({("US.AAPL", a[0]): 2}, lambda c: upsert_batch_in(c, [us_row("US.AAPL", a[0], shares_short=2)])),
        (
            {("US.AAPL", a[1]): 5},
            lambda c: c.execute(
                sa.text("UPDATE us_short_interest SET shares_short = 5 WHERE trade_date = :d"), {"d": a[1]}
            ),
        ),
        (
            {("US.AAPL", a[2]): None},
            lambda c: c.execute(sa.text("DELETE FROM us_short_interest WHERE trade_date = :d"), {"d": a[2]}),
        ),
        ({("US.AAPL", a[2]): 7}, lambda c: upsert_batch_in(c, [us_row("US.AAPL", a[2], shares_short=7)])),
        (
            {("HK.00700", h[0]): None, ("HK.00700", h[1]): 500},
            lambda c: c.execute(
                sa.text("UPDATE hk_short_interest SET trade_date = :d, published_on = :p WHERE trade_date = :old"),
                hk_moved,
            ),
        ),
        ({("US.AAPL", a[3]): 9}, lambda c: upsert_batch_in(c, [us_row("US.AAPL", a[3], shares_short=9)])),
    ]
    versions: dict[tuple[str, date], list[tuple[int, int | None]]] = {}
    moments = [pause()]
    for step, (changes, write) in enumerate(writes):
        with warehouse_engine.begin() as conn:
            write(conn)
        for key, value in changes.items():
            versions.setdefault(key, []).append((step, value))
        moments.append(pause())

    for held_after, moment in enumerate(moments, start=-1):
        expected: dict[tuple[str, date], tuple[int, bool]] = {}
        for key, kept in versions.items():
            before = [value for step, value in kept if step <= held_after]
            if before and before[-1] is not None:
                expected[key] = (before[-1], False)
            elif not before and kept[0][1] is not None:
                expected[key] = (kept[0][1], True)
        assert shares_by_key(read_short_interest(as_of=moment, engine=warehouse_engine)) == expected, held_after
        if warehouse_engine.dialect.name == "postgresql":
            assert sql_as_of(warehouse_engine, moment) == expected, held_after
            newest: dict[str, tuple[str, date]] = {}
            for key in sorted(expected):
                newest[key[0]] = key
            latest = {key: expected[key] for key in newest.values()}
            assert sql_as_of(warehouse_engine, moment, "short_interest_latest_as_of") == latest, held_after


def upsert_batch_in(conn: sa.Connection, rows: list[Any]) -> None:
    upsert_rows(conn, rows)
