"""Drive the Alembic history in `migrations/` programmatically: the product never needs alembic.ini."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError

from pipelines.warehouse.engine import create_engine_for, mask_url, read_connection
from pipelines.warehouse.errors import WarehouseNotMigratedError

# `migrations/` sits next to `pipelines/` both in the repository and when installed into site-packages.
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config() -> Config:
    if not (MIGRATIONS_DIR / "env.py").is_file():  # pragma: no cover - a broken installation
        raise RuntimeError(f"migration scripts not found at {MIGRATIONS_DIR}; reinstall shortinterest")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """The newest revision this code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the history always has a revision
        raise RuntimeError("the migrations directory holds no revisions")
    return head


def current_revision(engine: sa.Engine) -> str | None:
    """The revision the database is at; None for a database never migrated."""
    with read_connection(engine) as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(target: str | sa.Engine) -> str:
    """Migrate the database to head and return its revision; at head already, nothing changes.

    Raises WarehouseNotMigratedError for a database at a revision this code does not know (a newer version of
    shortinterest migrated it): there is no path from there, and Alembic would only say it cannot find it.
    """
    with _engine(target) as engine:
        current = current_revision(engine)
        if current is not None and not _is_known(current):
            raise WarehouseNotMigratedError(mask_url(engine.url), current, head_revision(), unknown=True)
        with engine.connect() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            revision = MigrationContext.configure(conn).get_current_revision()
    if revision is None:  # pragma: no cover - alembic stamps the version table in the same transaction
        raise RuntimeError(f"upgrade of {mask_url(engine.url)} left no revision stamped")
    return revision


def ensure_migrated(engine: sa.Engine) -> None:
    """Refuse to work on a database that is not at this code's head revision."""
    expected = head_revision()
    current = current_revision(engine)
    if current == expected:
        return
    known = current is None or _is_known(current)
    raise WarehouseNotMigratedError(mask_url(engine.url), current, expected, unknown=not known)


def _is_known(revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except (RevisionError, CommandError):
        return False


@contextmanager
def _engine(target: str | sa.Engine) -> Iterator[sa.Engine]:
    if isinstance(target, sa.Engine):
        yield target
        return
    engine = create_engine_for(target)
    try:
        yield engine
    finally:
        engine.dispose()
