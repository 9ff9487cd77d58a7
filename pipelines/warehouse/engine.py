"""Engines for the warehouse URL: the right driver, timeouts, and SQLite set up for several processes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from pipelines.warehouse.errors import WarehouseUrlError

# SQLite: how long a writer waits for another process's write lock before failing.
SQLITE_BUSY_TIMEOUT_S = 30
POSTGRES_CONNECT_TIMEOUT_S = 10
# Execution option of the connections `read_connection` opens; `_on_begin` begins their transactions DEFERRED.
READ_ONLY_OPTION = "shortinterest_read_only"

_PASSWORD_IN_URL = re.compile(r"(://[^:/?#@]*:)[^@/?#]*@")
_POSTGRES_DRIVERS = {"postgresql", "postgres", "postgresql+psycopg"}
_SQLITE_DRIVERS = {"sqlite", "sqlite+pysqlite"}


def mask_url(url: str | URL) -> str:
    """The URL as it may appear in logs and errors: password replaced by ***."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    return _PASSWORD_IN_URL.sub(r"\1***@", url)


def normalize_url(url: str) -> URL:
    """Parse the warehouse URL, pinning PostgreSQL to psycopg 3 (psycopg2 is installed too but unsupported)."""
    if not isinstance(url, str) or not url.strip():
        raise WarehouseUrlError(f"database URL {url!r} is empty; set SHORTINTEREST_DATABASE_URL")
    try:
        parsed = make_url(url.strip())
    except (ArgumentError, ValueError) as exc:
        raise WarehouseUrlError(
            f"database URL {mask_url(url)!r} is malformed ({exc}); expected e.g. "
            "postgresql://user@host:5432/dbname or sqlite:///path/to/warehouse.db"
        ) from None
    driver = parsed.drivername
    if driver in _POSTGRES_DRIVERS:
        parsed = parsed.set(drivername="postgresql+psycopg")
        if not parsed.database:
            raise WarehouseUrlError(f"database URL {mask_url(parsed)!r} names no database")
        return parsed
    if driver in _SQLITE_DRIVERS:
        return parsed.set(drivername="sqlite")
    raise WarehouseUrlError(
        f"database URL {mask_url(parsed)!r} uses unsupported driver {driver!r}; "
        "use postgresql:// (psycopg 3) or sqlite:///"
    )


def create_engine_for(url: str) -> sa.Engine:
    """An engine for the warehouse at `url` (PostgreSQL in production, SQLite embedded)."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    return _postgres_engine(parsed)


@contextmanager
def read_connection(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection for work that only reads the warehouse; never write on it.

    On SQLite its transactions begin DEFERRED instead of IMMEDIATE, so a reader takes no write lock and,
    with WAL, a long read (an export piped into a pager) never makes a loader's page wait for it. A write in
    such a transaction could deadlock with another writer on the lock upgrade: that is why writes keep
    IMMEDIATE. On PostgreSQL nothing changes: reads stay in a transaction, which streamed results need.
    """
    with engine.connect() as conn:
        yield conn.execution_options(**{READ_ONLY_OPTION: True})


def _postgres_engine(url: URL) -> sa.Engine:
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = POSTGRES_CONNECT_TIMEOUT_S
    if "application_name" not in url.query:
        connect_args["application_name"] = "shortinterest"
    return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def _sqlite_engine(url: URL) -> sa.Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    if not in_memory:
        path = Path(database).expanduser()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WarehouseUrlError(
                f"database URL {mask_url(url)!r}: cannot create directory {str(path.parent)!r}: {exc.strerror}"
            ) from None
    engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so `_on_begin` decides how BEGIN is spelled.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not in_memory:
                # WAL lets readers proceed while one process writes; NORMAL sync is durable with WAL.
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # IMMEDIATE takes the write lock up front: two processes that both read then write would otherwise
        # both hold read locks and deadlock on the upgrade to a write lock (SQLITE_BUSY without waiting).
        # A `read_connection` never writes, so it begins DEFERRED and holds no lock a writer waits for.
        options = conn.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return
        conn.exec_driver_sql("BEGIN" if options.get(READ_ONLY_OPTION) else "BEGIN IMMEDIATE")

    return engine
