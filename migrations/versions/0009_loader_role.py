"""A least-privilege role for the services and loads, so that a bug or a leaked URL cannot drop or empty tables.

Revision ID: 0009_loader_role
Revises: 0008_securities

`shortinterest_loader` (NOLOGIN; logins are made its members) may read every table and view and write what
loading writes, nothing more:

* SELECT on every table and view (plans, checks and reports read them; `alembic_version` tells a loader
  whether the schema is current);
* INSERT and UPDATE on every table loading writes: the market tables, the crawl state, the limiter's
  reservations, and whatever earlier revisions added to the schema (found in the catalog, not listed here);
* DELETE on the limiter's reservations only: booking a slot prunes the bucket's old ones, a late caller gives
  its slot back;
* USAGE on the sequences (the reservations' ids).

It gets no DELETE on the data or the crawl state, no TRUNCATE, and cannot CREATE, ALTER or DROP: only the owner,
which runs the migrations, can. Writes to `short_interest_newest` happen in its triggers, which run as the table's
owner (revision 0003), and so do writes to the history tables (revision 0007): the loader is granted
nothing there. Advisory locks need no privilege.

Tables later revisions create inherit the rule through default privileges of the migrating role: SELECT,
INSERT and UPDATE for the loader, SELECT for the reader. A revision whose table the loader must not write
revokes that explicitly; one whose table loading deletes from grants DELETE explicitly (migrations/README.md).

Roles are cluster-wide and shared by every warehouse database on the server: creating the role tolerates one
that exists (or that another database's migration creates at the same moment), and the downgrade revokes this
database's privileges but keeps the role, as other databases may still use it (as revision 0001 does for the
reader). SQLite has no roles: nothing to do there.
"""

from __future__ import annotations

from alembic import op

revision = "0009_loader_role"
down_revision = "0008_securities"
branch_labels = None
depends_on = None

LOADER_ROLE = "shortinterest_loader"
READER_ROLE = "shortinterest_reader"
# Tables loading never writes: Alembic's own, and those kept by triggers running as their owner (the newest
# report per code, revision 0003; every version a row held, revision 0007).
NOT_WRITTEN = ("alembic_version", "short_interest_newest", "us_short_interest_history", "hk_short_interest_history")
# Tables loading deletes rows from: the limiter prunes old slots and gives late ones back.
DELETED_FROM = ("rate_limit_reservations",)


def _sql_list(names: tuple[str, ...]) -> str:
    return ", ".join(f"'{name}'" for name in names)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # As revision 0001's reader: either error means another migration made the role a moment ago.
    op.execute(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{LOADER_ROLE}') THEN
                CREATE ROLE {LOADER_ROLE} NOLOGIN;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END
        $$
        """
    )
    op.execute(
        f"""
        DO $$
        DECLARE
            schema_name text := current_schema();
            table_name text;
        BEGIN
            EXECUTE format('GRANT USAGE ON SCHEMA %I TO {LOADER_ROLE}', schema_name);
            EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO {LOADER_ROLE}, {READER_ROLE}', schema_name);
            EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA %I TO {LOADER_ROLE}', schema_name);
            FOR table_name IN
                SELECT tablename FROM pg_tables
                 WHERE schemaname = schema_name AND tablename NOT IN ({_sql_list(NOT_WRITTEN)})
            LOOP
                EXECUTE format('GRANT INSERT, UPDATE ON %I.%I TO {LOADER_ROLE}', schema_name, table_name);
            END LOOP;
            FOR table_name IN
                SELECT tablename FROM pg_tables
                 WHERE schemaname = schema_name AND tablename IN ({_sql_list(DELETED_FROM)})
            LOOP
                EXECUTE format('GRANT DELETE ON %I.%I TO {LOADER_ROLE}', schema_name, table_name);
            END LOOP;
            EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE ON TABLES TO '
                           '{LOADER_ROLE}', schema_name);
            EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE ON SEQUENCES TO {LOADER_ROLE}',
                           schema_name);
            EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO {READER_ROLE}',
                           schema_name);
        END
        $$
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # The reader's grants belong to revision 0001 and stay.
    op.execute(
        f"""
        DO $$
        DECLARE
            schema_name text := current_schema();
        BEGIN
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{LOADER_ROLE}') THEN
                EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I REVOKE ALL ON TABLES FROM {LOADER_ROLE}',
                               schema_name);
                EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I REVOKE ALL ON SEQUENCES FROM {LOADER_ROLE}',
                               schema_name);
                EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM {LOADER_ROLE}', schema_name);
                EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %I FROM {LOADER_ROLE}', schema_name);
                EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM {LOADER_ROLE}', schema_name);
            END IF;
        END
        $$
        """
    )
