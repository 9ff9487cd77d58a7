"""Alembic environment for the warehouse.

`pipelines.warehouse.migrate.upgrade` hands over an open connection in `config.attributes["connection"]`;
the `alembic` CLI (configured by `[tool.alembic]` in pyproject.toml) falls back to SHORTINTEREST_DATABASE_URL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

# Serializes concurrent `migrate` runs against one PostgreSQL database (an arbitrary, fixed lock key).
_MIGRATION_LOCK_KEY = 0x5348_4F52_5449_4E54  # "SHORTINT"


def _run(connection: sa.Connection) -> None:
    # Both dialects run DDL transactionally here (SQLite too, since the engine emits its own BEGIN),
    # so a failed migration leaves the previous revision intact.
    context.configure(connection=connection, transactional_ddl=True, render_as_batch=True)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        context.run_migrations()


def _run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from pipelines.config import Settings
    from pipelines.warehouse.engine import create_engine_for

    config = context.config
    has_ini = config.file_config.has_section(config.config_ini_section)
    url = (has_ini and config.get_main_option("sqlalchemy.url")) or Settings.from_env().database_url
    engine = create_engine_for(url)
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run `shortinterest migrate`")
_run_online()
