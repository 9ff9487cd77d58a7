"""One code's changes within 10 ms: the previous report is looked up within a month first; a cheaper UPDATE trigger.

Revision ID: 0005_bounded_previous_lookup
Revises: 0004_crawl_state_gateway

Measured on PostgreSQL 15 with 10,000 codes and 6.65 M rows (bench/analyst_queries.py). One code's changes
took 10-13 ms from the client, 5.5-7.5 ms of it in the server, for 600-730 lookups of about 9 us each; the
client's fetch of those rows takes 4.3-5.3 ms whatever the plan, so the server part had to drop below 3 ms.
The lookup's cost was not the heap fetch (an index-only lookup through a covering index saved about 10 % and
would add an index entry to every write) but the B-tree scan itself: a backward scan reads every matching
entry of its leaf page before it returns the first, so "the newest report before this one" evaluated its
scan keys on up to a page of the code's older reports, hundreds of entries, per row. A lower bound on the
date stops the scan there: the lookup now asks for the newest report within the month before the row (a
weekly or twice-monthly report's predecessor nearly always is), 2 to 5 entries, and only when there is none
there for the newest report before that month, which is exact whatever the gap. One code's server time fell
to 2-3 ms (and its time at the client to 6-8 ms), one date's movers' by a third to a half (best of 20 on a
busy machine: 87 to 66 ms, 117 to 58 ms). The window definition, which PostgreSQL can restrict to one code
(code is its PARTITION BY column), takes 1.2 ms there, about the same, but cannot serve a filter on
trade_date; the bounded lookup serves both with one definition.

The UPDATE trigger of the newest table reaches the updated codes' newest rows through the key: the plan it
cached hashed the whole table (10,000 rows) for every revised page, and a market-wide revision of 720,000 rows
spent 5 s in it instead of 2. The INSERT trigger stays: taking each code's newest row from the transition
table instead of the data table saved nothing measurable on a page and doubled its time on a bulk insert
(a sort of the whole transition table). On a 50-row page neither changes much: the triggers take 0.15-0.45 ms
of the server's time per page, before and after; what a page cost was the client's own work (see
pipelines/warehouse/upsert.py).

SQLite keeps 0003's definitions: the window for short_interest_changes and row triggers.
"""

from __future__ import annotations

from alembic import op

from migrations.history import revision_module

revision = "0005_bounded_previous_lookup"
down_revision = "0004_crawl_state_gateway"
branch_labels = None
depends_on = None

# Days before a report within which its predecessor is looked for first.
NEAR_DAYS = 31

_0003 = revision_module("0003_fast_analyst_views.py")
if "WHERE n.code = t.code AND" not in _0003._PG_FUNCTIONS["updated"]:  # pragma: no cover - 0003 is frozen
    raise RuntimeError("revision 0003's UPDATE trigger is not the one this revision amends")

# The view's select list as 0003 wrote it (same columns, same expressions over p, the previous report).
_SELECT_CHANGES = _0003._CHANGES_POSTGRES[: _0003._CHANGES_POSTGRES.index("FROM {table} t")]
# Per market (format with _names): the near lookup first; the far one runs only when the near one found
# nothing (its one-time filter), so a row costs one short scan.
_CHANGES = (
    _SELECT_CHANGES
    + """FROM {table} t
      LEFT JOIN LATERAL (
            SELECT q.trade_date, q.{shares} FROM {table} q
             WHERE q.code = t.code AND q.trade_date < t.trade_date AND q.trade_date >= t.trade_date - {near_days}
             ORDER BY q.trade_date DESC LIMIT 1
      ) near ON TRUE
      LEFT JOIN LATERAL (
            SELECT q.trade_date, q.{shares} FROM {table} q
             WHERE near.trade_date IS NULL AND q.code = t.code AND q.trade_date < t.trade_date - {near_days}
             ORDER BY q.trade_date DESC LIMIT 1
      ) far ON TRUE
     CROSS JOIN LATERAL (
            SELECT COALESCE(near.trade_date, far.trade_date) AS trade_date,
                   CASE WHEN near.trade_date IS NULL THEN far.{shares} ELSE near.{shares} END AS {shares}
      ) p
"""
)

# Trigger bodies replaced here (format with _names); the other events keep 0003's.
_FUNCTIONS = {
    # 0003's statement, with the updated codes' newest rows found through the key first.
    "updated": _0003._PG_FUNCTIONS["updated"].replace(
        "WHERE n.code = t.code",
        "WHERE n.code = ANY (ARRAY(SELECT DISTINCT r.code FROM new_rows r)) AND n.code = t.code",
    ),
}


def _names(market: str) -> dict[str, str]:
    table, shares, percent = _0003._MARKETS[market]
    return {"market": market, "table": table, "shares": shares, "percent": percent, "near_days": str(NEAR_DAYS)}


def _replace(bodies: dict[str, str], changes: str) -> None:
    """Trigger functions replaced in place (their triggers, owner and grants stay), then the view."""
    for market in _0003._MARKETS:
        for event, body in bodies.items():
            op.execute(
                f"CREATE OR REPLACE FUNCTION {_0003._pg_function(event, market)}() RETURNS trigger LANGUAGE plpgsql "
                f"SECURITY DEFINER SET search_path FROM CURRENT AS $body$ BEGIN {body.format(**_names(market))} "
                "RETURN NULL; END $body$"
            )
    union = "UNION ALL".join(changes.format(**_names(market)) for market in _0003._MARKETS)
    op.execute(f"CREATE OR REPLACE VIEW short_interest_changes AS {union}")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _replace(_FUNCTIONS, _CHANGES)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _replace({event: _0003._PG_FUNCTIONS[event] for event in _FUNCTIONS}, _0003._CHANGES_POSTGRES)
