"""The loader role (migration 0009): loads and Dagster runs through a login in it work end to end; the same login
cannot create, alter, drop, truncate or delete data; tables added later follow the same rule; the reader still
reads everything analysts read."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from pipelines.config import RateLimit, Settings
from pipelines.orchestration.checks import CHECK_NAMES
from pipelines.orchestration.resources import resources_from_settings
from pipelines.orchestration.runner import run_market
from pipelines.warehouse import create_engine_for, head_revision, upgrade
from pipelines.warehouse.migrate import alembic_config
from pipelines.warehouse.schema import LOADER_ROLE, READER_ROLE, VIEW_NAMES
from proto_client.security import Market
from tests.support.crawl import expected_rows, run_cli, stored_rows
from tests.support.databases import fresh_postgres_database, login_in_role
from tests.support.gateway import GatewayProcess

AS_OF = date(2026, 5, 1)
REVISION = "0009_loader_role"
INSUFFICIENT_PRIVILEGE = "42501"
# What a bug or a leaked loader URL must not be able to do.
FORBIDDEN = (
    "CREATE TABLE intruder (x int)",
    "CREATE VIEW intruder AS SELECT 1 AS x",
    "DROP TABLE us_short_interest",
    "DROP VIEW short_interest",
    "TRUNCATE hk_short_interest",
    "ALTER TABLE crawl_state ADD COLUMN intruder int",
    "ALTER TABLE us_short_interest DISABLE TRIGGER USER",
    "DELETE FROM us_short_interest",
    "DELETE FROM hk_short_interest",
    "DELETE FROM crawl_state",
    "UPDATE short_interest_newest SET close_price = 0",
    "UPDATE alembic_version SET version_num = 'x'",
    # The versions a row held are written by the data tables' triggers alone, and can be neither changed nor faked.
    "UPDATE us_short_interest_history SET close_price = 0",
    "DELETE FROM hk_short_interest_history",
    "INSERT INTO hk_short_interest_history SELECT * FROM hk_short_interest_history",
)


def _refused(engine: sa.Engine, statement: str) -> None:
    with pytest.raises(sa.exc.DBAPIError) as caught, engine.begin() as conn:
        conn.execute(sa.text(statement))
    sqlstate = getattr(caught.value.orig, "sqlstate", None)
    assert sqlstate == INSUFFICIENT_PRIVILEGE, f"{statement}: {caught.value}"


@pytest.mark.slow
def test_a_load_and_a_dagster_run_through_a_loader_login_succeed(
    postgres_url: str, gateway_factory: Callable[..., GatewayProcess], tmp_path: Path
) -> None:
    assert upgrade(postgres_url) == head_revision()  # as the owner
    gateway = gateway_factory("--rate", "off", "--as-of", AS_OF.isoformat())
    watchlist = tmp_path / "watchlist.yaml"
    watchlist.write_text("codes:\n  - US.AAPL\n  - HK.09988\n")
    with login_in_role(LOADER_ROLE, postgres_url) as loader_url:
        env = {**gateway.env(), "SHORTINTEREST_DATABASE_URL": loader_url, "SHORTINTEREST_WATCHLIST": str(watchlist)}
        # Twice: a first (full) load and an incremental one, which updates what the first wrote.
        for _ in range(2):
            loaded = run_cli("load", env=env)
            assert loaded.returncode == 0, loaded.stdout + loaded.stderr
        status = run_cli("status", env=env)
        assert status.returncode == 0, status.stdout + status.stderr

        settings = Settings(
            opend_host=gateway.host,
            opend_port=gateway.port,
            rate_limit=RateLimit(1000, 1.0),
            database_url=loader_url,
            watchlist_path=watchlist,
        )
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions("us_codes", ["US.TSLA"])
            run = run_market(instance, Market.US, ["US.TSLA"], resources_from_settings(settings))
        assert run.success, run.failure
        assert [c.code for c in run.codes if c.ok] == ["US.TSLA"]
        # The checks read through the same login (freshness fails: the gateway's data ends at AS_OF).
        assert sorted(check.name for check in run.checks) == sorted(CHECK_NAMES), run.checks

    engine = create_engine_for(postgres_url)
    try:
        for code in ("US.AAPL", "HK.09988", "US.TSLA"):
            assert stored_rows(engine, code) == expected_rows(code, AS_OF), code
    finally:
        engine.dispose()


def test_the_loader_cannot_change_the_schema_or_delete_data_and_later_tables_follow_the_rule(
    postgres_url: str,
) -> None:
    upgrade(postgres_url)
    owner = create_engine_for(postgres_url)
    try:
        with owner.begin() as conn:
            # With a sequence, as a table with a generated id has.
            conn.execute(sa.text("CREATE TABLE later_table (id bigserial PRIMARY KEY, code text UNIQUE, n int)"))
        with (
            login_in_role(LOADER_ROLE, postgres_url) as loader_url,
            login_in_role(READER_ROLE, postgres_url) as reader_url,
        ):
            loader, reader = create_engine_for(loader_url), create_engine_for(reader_url)
            try:
                for statement in (*FORBIDDEN, "DELETE FROM later_table", "DROP TABLE later_table"):
                    _refused(loader, statement)
                with loader.begin() as conn:
                    # What loading does: write, upsert, prune the limiter's slots; a later table like the others.
                    conn.execute(sa.text("INSERT INTO crawl_state (code, market) VALUES ('US.AAPL', 'US')"))
                    conn.execute(sa.text("UPDATE crawl_state SET last_error = 'x' WHERE code = 'US.AAPL'"))
                    conn.execute(sa.text("INSERT INTO rate_limit_reservations (bucket, reserved_at) VALUES ('b', 1)"))
                    conn.execute(sa.text("DELETE FROM rate_limit_reservations WHERE bucket = 'b'"))
                    conn.execute(sa.text("INSERT INTO later_table (code, n) VALUES ('US.AAPL', 1)"))
                    conn.execute(sa.text("UPDATE later_table SET n = 2"))
                for statement in (
                    "INSERT INTO later_table (code, n) VALUES ('HK.00700', 1)",
                    "DELETE FROM crawl_state",
                ):
                    _refused(reader, statement)
                with reader.connect() as conn:
                    for relation in (*VIEW_NAMES, "crawl_state", "later_table"):
                        conn.execute(sa.text(f"SELECT * FROM {relation}")).all()
            finally:
                loader.dispose()
                reader.dispose()
    finally:
        owner.dispose()


def test_a_downgrade_revokes_this_databases_grants_and_keeps_the_shared_role(postgres_url: str) -> None:
    previous = ScriptDirectory.from_config(alembic_config()).get_revision(REVISION).down_revision
    assert isinstance(previous, str)
    with fresh_postgres_database() as other_url:
        upgrade(other_url)
        upgrade(postgres_url)
        engine = create_engine_for(postgres_url)
        try:
            with engine.connect() as conn:
                config = alembic_config()
                config.attributes["connection"] = conn
                command.downgrade(config, previous)
            assert _loader_may_insert(postgres_url) is False
            assert _loader_may_insert(other_url) is True, "another database's grants went with the downgrade"
            upgrade(engine)
            assert _loader_may_insert(postgres_url) is True
        finally:
            engine.dispose()


def _loader_may_insert(database_url: str) -> bool:
    engine = create_engine_for(database_url)
    try:
        with engine.connect() as conn:
            allowed = conn.execute(
                sa.text("SELECT has_table_privilege(:role, 'crawl_state', 'INSERT')"), {"role": LOADER_ROLE}
            ).scalar_one()
    finally:
        engine.dispose()
    return bool(allowed)
