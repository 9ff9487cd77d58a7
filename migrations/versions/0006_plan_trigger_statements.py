"""The newest table's statement triggers plan each statement afresh instead of keeping a session's first plan.

Revision ID: 0006_plan_trigger_statements
Revises: 0005_bounded_previous_lookup

PL/pgSQL plans a trigger's statements once per session and keeps the plans until something invalidates them
(DDL, or an ANALYZE of a table they read). A loader whose session began on empty tables kept the plan made
then, a scan of the whole data table for each page's newest rows, for as long as no ANALYZE ran (autovacuum
off, or between its passes on a fast-growing table): on a first load of 2,000 codes into a server without
autovacuum, a 50-row page spent over 100 ms in the INSERT trigger once the tables held 900,000 rows, and more
as they grew, instead of about 1 ms. The statement-level bodies now run through EXECUTE, planned for every
statement with the tables' current sizes and the transition table's row count: a fraction of a millisecond of
planning per page, and the right plan for a page and a bulk load alike. The statements and their results are
those of revisions 0003 and 0005. SQLite's row triggers have no such cache and stay as they are.
"""

from __future__ import annotations

from alembic import op

from migrations.history import revision_module

revision = "0006_plan_trigger_statements"
down_revision = "0005_bounded_previous_lookup"
branch_labels = None
depends_on = None

_0005 = revision_module("0005_bounded_previous_lookup.py")
_0003 = _0005._0003
# The statement-level trigger bodies in force after 0005 (format with 0005's _names).
_BODIES = {
    "inserted": _0003._PG_FUNCTIONS["inserted"],
    "updated": _0005._FUNCTIONS["updated"],
    "deleted": _0003._PG_FUNCTIONS["deleted"],
}


def _planned_each_time(statement: str) -> str:
    """The body as one dynamic statement (PERFORM is PL/pgSQL's SELECT that discards its result)."""
    sql = statement.strip().rstrip(";").strip()
    if sql.startswith("PERFORM "):
        sql = "SELECT " + sql.removeprefix("PERFORM ")
    return f"EXECUTE $statement$ {sql} $statement$;"


def _replace(dynamic: bool) -> None:
    for market in _0003._MARKETS:
        for event, body in _BODIES.items():
            statement = body.format(**_0005._names(market))
            code = _planned_each_time(statement) if dynamic else statement
            op.execute(
                f"CREATE OR REPLACE FUNCTION {_0003._pg_function(event, market)}() RETURNS trigger LANGUAGE plpgsql "
                f"SECURITY DEFINER SET search_path FROM CURRENT AS $body$ BEGIN {code} RETURN NULL; END $body$"
            )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _replace(dynamic=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _replace(dynamic=False)
