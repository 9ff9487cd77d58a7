"""Throwaway databases: every test that needs a warehouse gets its own, made and dropped here."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

# A superuser connection to a maintenance database. The test session sets the variable to the server it chose
# (tests/support/session_postgres.py); outside one (benchmarks) the default address is used.
URL_VARIABLE = "SHORTINTEREST_TEST_PG_URL"
DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def admin_url() -> str:
    return os.environ.get(URL_VARIABLE) or DEFAULT_ADMIN_URL


def run_as_admin(statement: str) -> None:
    """One statement as the session's superuser, outside a transaction (CREATE and DROP DATABASE need that)."""
    admin = sa.create_engine(admin_url(), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(statement))
    finally:
        admin.dispose()


@contextmanager
def fresh_postgres_database(prefix: str = "si_test", template: str | None = None) -> Iterator[str]:
    """Create a database, empty or a copy of `template`, yield its SQLAlchemy URL, drop it (closing stray
    sessions) afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    run_as_admin(f'CREATE DATABASE "{name}"{copy}')
    try:
        yield make_url(admin_url()).set(database=name).render_as_string(hide_password=False)
    finally:
        run_as_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def login_in_role(role: str, database_url: str) -> Iterator[str]:
    """A new login that is a member of `role` (as the docs make one), as a URL on `database_url`; dropped afterwards.

    Roles are cluster-wide, so each login gets a name of its own."""
    name, password = f"si_login_{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    run_as_admin(f"CREATE ROLE {name} LOGIN PASSWORD '{password}' IN ROLE {role}")
    try:
        yield make_url(database_url).set(username=name, password=password).render_as_string(hide_password=False)
    finally:
        run_as_admin(f"DROP ROLE IF EXISTS {name}")
