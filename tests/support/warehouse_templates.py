"""Migrated warehouses to copy, so that a test's migrated warehouse costs a copy instead of every migration.

A test process migrates one PostgreSQL database on the session's server and one SQLite file the first time a
test asks for a migrated warehouse (`pg_engine`, `warehouse_engine`), and from then on makes each one as a copy:
`CREATE DATABASE ... TEMPLATE`, a file copy. A run of the migrations costs about 0.14 CPU-seconds on PostgreSQL
(server and client) and 0.05 on SQLite, some 330 times a suite on two cores; the copy costs what creating an
empty database does. The migrations themselves are still run by every test of them, on databases of their own.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path

from sqlalchemy.engine import make_url

from pipelines.warehouse import upgrade
from tests.support.databases import admin_url, run_as_admin


class WarehouseTemplates:
    """One test process's templates, made on first use; `close` drops them."""

    def __init__(self) -> None:
        self._directory: Path | None = None
        self._postgres: str | None = None  # the migrated template's database name on the session's server

    def postgres(self) -> str:
        """The name of a migrated database on the session's server that no one is connected to."""
        if self._postgres is None:
            name = f"si_template_{uuid.uuid4().hex[:12]}"
            run_as_admin(f'CREATE DATABASE "{name}"')
            self._postgres = name
            upgrade(make_url(admin_url()).set(database=name).render_as_string(hide_password=False))
        return self._postgres

    def copy_sqlite(self, path: Path) -> None:
        """Make `path` (which must not exist) a migrated SQLite warehouse."""
        if self._directory is None:
            self._directory = Path(tempfile.mkdtemp(prefix="si-warehouse-template-"))
            template = self._directory / "warehouse.db"
            upgrade(f"sqlite:///{template}")
            if template.with_name(template.name + "-wal").exists():  # a copy would miss what the log holds
                raise RuntimeError(f"the migrated SQLite template {template} was left with a write-ahead log")
        if path.exists():
            raise FileExistsError(f"{path} exists: a migrated warehouse is copied only to a new file")
        shutil.copyfile(self._directory / "warehouse.db", path)

    def close(self) -> None:
        if self._postgres is not None:
            run_as_admin(f'DROP DATABASE IF EXISTS "{self._postgres}" WITH (FORCE)')
            self._postgres = None
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None
