"""The warehouse's tables, views and functions with their columns, from the comments a migrated PostgreSQL
warehouse carries (`COMMENT ON`), so the page says what `\\d+` says.

Every table and view analysts may read must have a comment, and each of its columns too: the page refuses to
be generated otherwise. Functions are listed when they have a comment (trigger functions have none).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from pipelines.docs_reference import HEADER
from pipelines.docs_reference.environment import cell

# The migrations' own bookkeeping and the rate limiter's reservations: not for people to read.
INTERNAL = frozenset({"alembic_version", "rate_limit_reservations"})
KINDS = {"v": "Views", "r": "Tables"}

_RELATIONS = sa.text(
    """
    SELECT c.oid, c.relname, c.relkind, obj_description(c.oid, 'pg_class') AS comment
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v')
     ORDER BY c.relname
    """
)
_COLUMNS = sa.text(
    """
    SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, col_description(a.attrelid, a.attnum) AS comment
      FROM pg_attribute a
     WHERE a.attrelid = :oid AND a.attnum > 0 AND NOT a.attisdropped
     ORDER BY a.attnum
    """
)
_FUNCTIONS = sa.text(
    """
    SELECT p.proname, pg_get_function_identity_arguments(p.oid) AS arguments,
           obj_description(p.oid, 'pg_proc') AS comment,
           ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proallargtypes) AS t) AS types,
           p.proargnames AS names, p.proargmodes::text[] AS modes
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = 'public' AND obj_description(p.oid, 'pg_proc') IS NOT NULL
     ORDER BY p.proname
    """
)


class UncommentedError(ValueError):
    """A table, view or column analysts may read has no comment to document it with."""


@dataclass(frozen=True, slots=True)
class Relation:
    name: str
    kind: str
    comment: str
    columns: tuple[tuple[str, str, str], ...]  # name, type, comment


def relations(conn: sa.Connection) -> list[Relation]:
    """Every documented table and view, with its columns."""
    found: list[Relation] = []
    missing: list[str] = []
    for oid, name, kind, comment in conn.execute(_RELATIONS):
        if name in INTERNAL:
            continue
        columns = tuple((c, t, d or "") for c, t, d in conn.execute(_COLUMNS, {"oid": oid}))
        missing += [name] if not comment else []
        missing += [f"{name}.{column}" for column, _, text in columns if not text]
        found.append(Relation(name, kind, comment or "", columns))
    if missing:
        raise UncommentedError(f"no comment (COMMENT ON ... IS '...' in a migration) on: {', '.join(missing)}")
    return found


def _columns_table(rows: list[tuple[str, str, str]]) -> str:
    lines = ["| column | type | meaning |", "|---|---|---|"]
    lines += [f"| `{name}` | {type_} | {cell(text)} |" for name, type_, text in rows]
    return "\n".join(lines) + "\n\n"


def render(conn: sa.Connection) -> str:
    """The fragment: views, then functions, then tables, each with its comment and columns."""
    everything = relations(conn)
    out = [
        HEADER.format(source="the comments of a migrated PostgreSQL warehouse"),
        _relations(everything, "v"),
        _functions(conn),
        _relations(everything, "r"),
    ]
    return "".join(out).rstrip("\n") + "\n"


def _relations(everything: list[Relation], kind: str) -> str:
    out = [f"## {KINDS[kind]}\n\n"]
    for relation in (r for r in everything if r.kind == kind):
        out.append(f"### `{relation.name}`\n\n{relation.comment}\n\n")
        out.append(_columns_table(list(relation.columns)))
    return "".join(out)


def _functions(conn: sa.Connection) -> str:
    out = ["## Functions\n\n"]
    for name, arguments, comment, types, names, modes in conn.execute(_FUNCTIONS):
        returned = [f"| `{n}` | {t} |" for n, t, m in zip(names, types, modes, strict=True) if m == "t"]
        out.append(f"### `{name}({arguments})`\n\n{comment}\n\n")
        if returned:
            out.append("\n".join(["Returns rows of:", "", "| column | type |", "|---|---|", *returned]) + "\n\n")
    return "".join(out)
