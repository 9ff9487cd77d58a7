"""Migrations from empty, the resulting schema, comments, the reader role, and refusing unmigrated databases."""

from __future__ import annotations

import multiprocessing
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import make_url

from pipelines.warehouse import (
    WarehouseNotMigratedError,
    create_engine_for,
    current_revision,
    ensure_migrated,
    head_revision,
    upgrade,
)
from pipelines.warehouse.migrate import alembic_config
from pipelines.warehouse.schema import READER_ROLE, VIEW_NAMES, metadata

DATA_TABLES = ("us_short_interest", "hk_short_interest")
OWN_TABLES = (*DATA_TABLES, "crawl_state", "short_interest_newest")


@pytest.fixture
def engine(database_url: str) -> sa.Engine:
    engine = create_engine_for(database_url)
    yield engine
    engine.dispose()


def test_upgrade_from_empty_then_again_is_a_no_op(engine: sa.Engine) -> None:
    assert current_revision(engine) is None
    assert upgrade(engine) == head_revision()
    names = set(sa.inspect(engine).get_table_names())
    assert set(OWN_TABLES) <= names
    assert set(VIEW_NAMES) <= set(sa.inspect(engine).get_view_names())
    assert upgrade(engine) == head_revision()
    assert current_revision(engine) == head_revision()


def test_first_revision_id_is_stable() -> None:
    # Later migrations name it as their down_revision.
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_revision("0001_initial").down_revision is None


def test_downgrade_to_base_and_up_again(engine: sa.Engine) -> None:
    upgrade(engine)
    with engine.connect() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    inspector = sa.inspect(engine)
    assert not set(OWN_TABLES) & set(inspector.get_table_names())
    assert not set(VIEW_NAMES) & set(inspector.get_view_names())
    assert upgrade(engine) == head_revision()


def test_keys_and_column_types(engine: sa.Engine) -> None:
    upgrade(engine)
    inspector = sa.inspect(engine)
    for table in DATA_TABLES:
        assert inspector.get_pk_constraint(table)["constrained_columns"] == ["code", "trade_date"]
    assert inspector.get_pk_constraint("crawl_state")["constrained_columns"] == ["code"]
    types = {c["name"]: c["type"] for c in inspector.get_columns("us_short_interest")}
    hk_types = {c["name"]: c["type"] for c in inspector.get_columns("hk_short_interest")}
    for name in ("shares_short", "avg_daily_share_volume", "source_timestamp"):
        assert isinstance(types[name], sa.BigInteger), name
    assert isinstance(hk_types["aggregated_short"], sa.BigInteger)
    for name in ("short_percent", "days_to_cover", "close_price", "last_close_price"):
        assert isinstance(types[name], sa.Double | sa.Float), name
    assert isinstance(types["trade_date"], sa.Date)
    if engine.dialect.name == "postgresql":
        assert all(types[n].__class__.__name__ == "DOUBLE_PRECISION" for n in ("short_percent", "close_price"))
        for name in ("first_loaded_at", "updated_at"):
            assert isinstance(types[name], sa.DateTime) and types[name].timezone, name
    checks = {c["name"] for c in inspector.get_check_constraints("us_short_interest")}
    assert {"ck_us_short_interest_shares_short_nonneg", "ck_us_short_interest_avg_volume_nonneg"} <= checks


def test_database_constraints_refuse_negative_counts(engine: sa.Engine) -> None:
    upgrade(engine)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO hk_short_interest (code, trade_date, source_timestamp, aggregated_short) "
                "VALUES ('HK.00700', '2024-01-02', 1704124800, -1)"
            )
        )


def test_migrations_match_the_schema_module(engine: sa.Engine) -> None:
    upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = [
            diff
            for diff in compare_metadata(context, metadata)
            if not (diff[0] == "remove_table" and diff[1].name not in OWN_TABLES)
            and not (diff[0] == "remove_index" and diff[1].table.name not in OWN_TABLES)
        ]
    assert diffs == []


def _comments(conn: sa.Connection, relation: str) -> tuple[str | None, dict[str, str | None]]:
    table_comment = conn.execute(
        sa.text("SELECT obj_description(CAST(:r AS regclass), 'pg_class')"), {"r": relation}
    ).scalar_one()
    columns = conn.execute(
        sa.text(
            "SELECT attname, col_description(attrelid, attnum) FROM pg_attribute "
            "WHERE attrelid = CAST(:r AS regclass) AND attnum > 0 AND NOT attisdropped"
        ),
        {"r": relation},
    ).all()
    return table_comment, dict(columns)


def test_every_table_view_and_column_is_commented(postgres_url: str) -> None:
    upgrade(postgres_url)
    engine = create_engine_for(postgres_url)
    try:
        with engine.connect() as conn:
            for relation in (*OWN_TABLES, *VIEW_NAMES):
                table_comment, columns = _comments(conn, relation)
                assert table_comment, relation
                missing = [name for name, comment in columns.items() if not comment]
                assert missing == [], relation
            _, us_columns = _comments(conn, "us_short_interest")
    finally:
        engine.dispose()
    assert "number before the % sign" in us_columns["short_percent"]
    assert "USD" in us_columns["close_price"]
    assert "America/New_York" in us_columns["trade_date"]


def test_reader_role_can_select_and_cannot_write(postgres_url: str) -> None:
    upgrade(postgres_url)
    engine = create_engine_for(postgres_url)
    try:
        with engine.begin() as conn:
            login = conn.execute(sa.text("SELECT rolcanlogin FROM pg_roles WHERE rolname = :r"), {"r": READER_ROLE})
            assert login.scalar_one() is False
            # A table created later is readable too (default privileges).
            conn.execute(sa.text("CREATE TABLE later_table (x int)"))
        with engine.begin() as conn:
            conn.execute(sa.text(f"SET LOCAL ROLE {READER_ROLE}"))
            for relation in (*OWN_TABLES, *VIEW_NAMES, "later_table"):
                conn.execute(sa.text(f"SELECT * FROM {relation}")).all()
        for statement in (
            "INSERT INTO crawl_state (code, market) VALUES ('US.AAPL', 'US')",
            "DELETE FROM us_short_interest",
            "UPDATE hk_short_interest SET close_price = 0",
            "CREATE TABLE mine (x int)",
        ):
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), engine.begin() as conn:
                conn.execute(sa.text(f"SET LOCAL ROLE {READER_ROLE}"))
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()


def _upgrade_in_process(url: str, results: Any) -> None:
    results.put(upgrade(url))


def test_concurrent_upgrades_of_one_database_both_succeed(database_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [context.Process(target=_upgrade_in_process, args=(database_url, results)) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0, 0]
    assert sorted(results.get(timeout=5) for _ in processes) == [head_revision()] * 2


def test_ensure_migrated_refuses_an_empty_database(engine: sa.Engine) -> None:
    with pytest.raises(WarehouseNotMigratedError) as caught:
        ensure_migrated(engine)
    message = str(caught.value)
    assert "run `shortinterest migrate`" in message
    assert "empty" in message and head_revision() in message
    upgrade(engine)
    ensure_migrated(engine)


def test_ensure_migrated_refuses_an_older_revision_and_masks_the_password(postgres_url: str) -> None:
    # Trust authentication ignores the password, so the URL can carry one that must never be shown.
    url = make_url(postgres_url).set(password="s3cr3t-pw").render_as_string(hide_password=False)
    engine = create_engine_for(url)
    try:
        with engine.connect() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "0001_initial")
        with pytest.raises(WarehouseNotMigratedError) as caught:
            ensure_migrated(engine)
    finally:
        engine.dispose()
    message = str(caught.value)
    assert "s3cr3t-pw" not in message and "***" in message
    assert "'0001_initial'" in message and "run `shortinterest migrate`" in message
    assert caught.value.current == "0001_initial"


def test_ensure_migrated_names_an_unknown_revision(engine: sa.Engine) -> None:
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    with pytest.raises(WarehouseNotMigratedError, match="newer version of shortinterest"):
        ensure_migrated(engine)
