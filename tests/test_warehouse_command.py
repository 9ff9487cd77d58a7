"""`shortinterest migrate` end to end, and engines built from the warehouse URL."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines.warehouse import WarehouseUrlError, create_engine_for, head_revision
from pipelines.warehouse.engine import mask_url

# Every test here waits seconds on loads, gateways, outages, services or Dagster runs: outside the inner loop.
pytestmark = pytest.mark.slow


def run_migrate(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "migrate"],
        env={**os.environ, "SHORTINTEREST_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_migrate_command_twice(database_url: str) -> None:
    first = run_migrate(database_url)
    assert first.returncode == 0, first.stderr
    assert f"(empty) -> {head_revision()}" in first.stdout
    second = run_migrate(database_url)
    assert second.returncode == 0, second.stderr
    assert f"already at the latest revision {head_revision()}" in second.stdout
    engine = create_engine_for(database_url)
    try:
        assert "us_short_interest" in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_migrate_command_masks_the_password(postgres_url: str) -> None:
    url = postgres_url.replace("postgres@", "postgres:hunter2@", 1)
    result = run_migrate(url)
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout + result.stderr and "***" in result.stdout


def test_migrate_command_reports_a_bad_url() -> None:
    result = run_migrate("mysql://root:topsecret@localhost/db")
    assert result.returncode == 2
    assert "unsupported driver 'mysql'" in result.stderr and "topsecret" not in result.stderr


def test_migrate_command_reports_an_unreachable_database() -> None:
    result = run_migrate("postgresql://nobody:pw@127.0.0.1:1/nothing")
    assert result.returncode == 1
    assert "cannot migrate warehouse postgresql+psycopg://nobody:***@127.0.0.1:1/nothing" in result.stderr
    assert "Traceback" not in result.stderr


def test_migrate_command_refuses_a_warehouse_a_newer_version_migrated(database_url: str) -> None:
    assert run_migrate(database_url).returncode == 0
    engine = create_engine_for(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    finally:
        engine.dispose()
    result = run_migrate(database_url)
    assert result.returncode == 1, result.stderr
    assert "'9999_from_the_future'" in result.stderr and "newer version of shortinterest" in result.stderr
    assert "Traceback" not in result.stderr


def test_postgres_urls_use_psycopg_3(postgres_url: str) -> None:
    plain = postgres_url.replace("postgresql+psycopg://", "postgres://", 1)
    for url in (plain, plain.replace("postgres://", "postgresql://", 1)):
        engine = create_engine_for(url)
        try:
            assert engine.dialect.driver == "psycopg"
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
        finally:
            engine.dispose()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "is empty"),
        ("not a url", "malformed"),
        ("postgresql://user:pa55word@host:notaport/db", "malformed"),
        ("postgresql+psycopg2://user:pa55word@host/db", "unsupported driver"),
        ("postgresql://user:pa55word@host", "names no database"),
    ],
)
def test_bad_urls_are_named_with_the_password_masked(url: str, problem: str) -> None:
    with pytest.raises(WarehouseUrlError, match=problem) as caught:
        create_engine_for(url)
    assert "pa55word" not in str(caught.value)


def test_mask_url() -> None:
    assert mask_url("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"
    assert mask_url("sqlite:///x.db") == "sqlite:///x.db"


def test_sqlite_engine_creates_its_directory_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "warehouse.db"
    engine = create_engine_for(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == 30_000
        assert path.exists()
    finally:
        engine.dispose()


def test_sqlite_transactions_take_the_write_lock_at_begin(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.db"
    engine = create_engine_for(f"sqlite:///{path}")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("SELECT 1")  # a read only, yet the write lock is already held
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    finally:
        other.close()
        engine.dispose()
