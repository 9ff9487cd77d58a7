"""Analyst views that stay fast at full-market scale, always current, with no refresh to remember.

Revision ID: 0003_fast_analyst_views
Revises: 0002_rate_limiter

Measured on PostgreSQL 15 with 10,000 codes and 6.65 M rows (bench/analyst_queries.py), the first
definitions took seconds for the two questions analysts ask first: both views computed a window over every
row of both tables, and a filter on the report date cannot be pushed below a window. Now:

* short_interest_changes finds each row's previous report with a LATERAL lookup (one backward step on the
  primary key per row) instead of LAG over everything, one branch per market table, so a filter on
  trade_date or code reaches the table. A trade_date index serves one date's rows (the movers of a report
  date); the key serves one code's history. Writes pay one more index entry per row and nothing else.
  Keeping the previous report's values on each row instead (by trigger) would make a whole-table read a
  plain scan, but every out-of-order row or revision would then rewrite its successor, and every bulk load
  would write each row twice; the lookup needs no write-time work and stays correct by construction.
* short_interest_latest reads short_interest_newest, each code's newest report in the view's columns. Two
  cheaper-to-write designs were measured first: a skip scan over the key (a recursive query, no write-time
  work) took 3-4 times the 100 ms target, as PostgreSQL 15 has no skip scan of its own; a table of newest
  dates joined back to the data by key took 10-20 times its own read of 10,000 rows, since it touches a
  key page and a heap page per code, more than the default shared_buffers hold. The table is kept by
  triggers, so every write shows at once whatever wrote it (the loader, a hand fix, a bulk import, COPY):
  statement-level triggers fold each INSERT, COPY or UPDATE in with one grouped statement (a 50-row page
  adds one small statement), a row trigger fires only when a key changes, deletes and TRUNCATE recompute
  or drop the codes that lost their newest row. The triggers run as the table's owner (SECURITY DEFINER),
  so a writer needs no privilege on it. Writes with triggers disabled (session_replication_role = replica)
  bypass it, as they bypass every constraint trigger.

SQLite keeps correct and simpler: row triggers keep the same table (and short_interest_latest reads it),
short_interest_changes keeps its window (SQLite has no LATERAL).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_fast_analyst_views"
down_revision = "0002_rate_limiter"
branch_labels = None
depends_on = None

READER_ROLE = "shortinterest_reader"
NEWEST = "short_interest_newest"
# Market -> (table, its shares-short column, its short-percent column).
_MARKETS = {
    "US": ("us_short_interest", "shares_short", "short_percent"),
    "HK": ("hk_short_interest", "aggregated_short", "aggregated_short_ratio"),
}

_COLUMNS = "market, code, trade_date, short_shares, short_percent, close_price, last_close_price, updated_at"
_LATEST = f"SELECT {_COLUMNS} FROM short_interest_newest"
# The view's columns from a market table aliased t (a template: format with one of _MARKETS).
_FROM_TABLE = (
    "CAST('{market}' AS VARCHAR(2)), t.code, t.trade_date, t.{shares}, t.{percent}, t.close_price, "
    "t.last_close_price, t.updated_at"
)
_SET_ALL = ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS.split(", ") if c != "code")

_CHANGES_POSTGRES = """
    SELECT CAST('{market}' AS VARCHAR(2)) AS market, t.code, t.trade_date, t.{shares} AS short_shares,
           t.{percent} AS short_percent,
           p.trade_date AS previous_trade_date, p.{shares} AS previous_short_shares,
           t.{shares} - p.{shares} AS short_shares_change,
           CASE WHEN p.{shares} = 0 THEN NULL
                ELSE CAST(t.{shares} - p.{shares} AS DOUBLE PRECISION) * 100 / p.{shares}
           END AS short_shares_change_percent,
           t.close_price, t.last_close_price, t.updated_at
      FROM {table} t
      LEFT JOIN LATERAL (
            SELECT q.trade_date, q.{shares} FROM {table} q
             WHERE q.code = t.code AND q.trade_date < t.trade_date
             ORDER BY q.trade_date DESC LIMIT 1
      ) p ON TRUE
"""

# The definitions this revision replaces, spelled out (frozen history), for the downgrade and for SQLite.
_OLD_LATEST = """
    SELECT market, code, trade_date, short_shares, short_percent, close_price, last_close_price, updated_at
      FROM (SELECT s.*, ROW_NUMBER() OVER (PARTITION BY code ORDER BY trade_date DESC) AS recency
              FROM short_interest s) ranked
     WHERE recency = 1
"""
_OLD_CHANGES = """
    SELECT market, code, trade_date, short_shares, short_percent,
           previous_trade_date, previous_short_shares,
           short_shares - previous_short_shares AS short_shares_change,
           CASE WHEN previous_short_shares = 0 THEN NULL
                ELSE CAST(short_shares - previous_short_shares AS DOUBLE PRECISION) * 100
                     / previous_short_shares
           END AS short_shares_change_percent,
           close_price, last_close_price, updated_at
      FROM (SELECT s.*,
                   LAG(trade_date) OVER (PARTITION BY code ORDER BY trade_date) AS previous_trade_date,
                   LAG(short_shares) OVER (PARTITION BY code ORDER BY trade_date) AS previous_short_shares
              FROM short_interest s) with_previous
"""

# PostgreSQL. Recompute these codes' newest reports from the tables (after deletes and key changes).
_PG_RECOMPUTE = f"""
    CREATE FUNCTION short_interest_newest_recompute(codes VARCHAR[]) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path FROM CURRENT AS $body$
        DELETE FROM short_interest_newest n
         WHERE n.code = ANY (codes) AND NOT EXISTS (SELECT 1 FROM short_interest s WHERE s.code = n.code);
        INSERT INTO short_interest_newest AS n ({_COLUMNS})
        SELECT s.*
          FROM (SELECT DISTINCT unnest(codes) AS code) c
         CROSS JOIN LATERAL (SELECT {_COLUMNS} FROM short_interest s WHERE s.code = c.code
                              ORDER BY s.trade_date DESC LIMIT 1) s
         ORDER BY s.code
        ON CONFLICT (code) DO UPDATE SET {_SET_ALL};
    $body$
"""
# Per market (format with one of _MARKETS), one function per event.
_PG_FUNCTIONS = {
    # Every INSERT or COPY statement: each code's newest inserted row, where not older than the stored one.
    # Codes with a newer report stored are filtered out first, so loading old history locks nothing here.
    "inserted": f"""
        INSERT INTO short_interest_newest AS n ({_COLUMNS})
        SELECT {_FROM_TABLE}
          FROM (SELECT code, max(trade_date) AS newest FROM new_rows GROUP BY code) g
          JOIN {{table}} t ON t.code = g.code AND t.trade_date = g.newest
         WHERE NOT EXISTS (SELECT 1 FROM short_interest_newest s WHERE s.code = g.code AND s.trade_date > g.newest)
         ORDER BY t.code
        ON CONFLICT (code) DO UPDATE SET {_SET_ALL}
         WHERE n.trade_date <= EXCLUDED.trade_date;
    """,
    # Every UPDATE statement (revisions): the newest reports among the updated rows take the new values.
    "updated": """
        UPDATE short_interest_newest n
           SET short_shares = t.{shares}, short_percent = t.{percent}, close_price = t.close_price,
               last_close_price = t.last_close_price, updated_at = t.updated_at
          FROM new_rows t
         WHERE n.code = t.code AND n.trade_date = t.trade_date;
    """,
    # Every DELETE statement: codes whose newest report went are recomputed.
    "deleted": """
        PERFORM short_interest_newest_recompute(ARRAY(
            SELECT DISTINCT o.code FROM old_rows o
              JOIN short_interest_newest n ON n.code = o.code AND n.trade_date = o.trade_date));
    """,
    # A row whose code or trade_date changed (a hand fix): both codes are recomputed.
    "rekeyed": """
        PERFORM short_interest_newest_recompute(ARRAY[OLD.code, NEW.code]);
    """,
    "truncated": """
        DELETE FROM short_interest_newest WHERE market = '{market}';
    """,
}
_PG_EVENTS = {
    "inserted": "AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT",
    "updated": "AFTER UPDATE ON {table} REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT",
    "deleted": "AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT",
    "rekeyed": "AFTER UPDATE OF code, trade_date ON {table} FOR EACH ROW "
    "WHEN (OLD.code IS DISTINCT FROM NEW.code OR OLD.trade_date IS DISTINCT FROM NEW.trade_date)",
    "truncated": "AFTER TRUNCATE ON {table} FOR EACH STATEMENT",
}


def _pg_function(event: str, market: str) -> str:
    return f"short_interest_newest_{event}_{market.lower()}"


def _pg_objects(market: str) -> list[str]:
    table, shares, percent = _MARKETS[market]
    names = {"market": market, "table": table, "shares": shares, "percent": percent}
    statements = []
    for event, body in _PG_FUNCTIONS.items():
        function = _pg_function(event, market)
        statements += [
            f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER "
            f"SET search_path FROM CURRENT AS $body$ BEGIN {body.format(**names)} RETURN NULL; END $body$",
            f"REVOKE ALL ON FUNCTION {function}() FROM PUBLIC",
            f"CREATE TRIGGER {table}_newest_{event} {_PG_EVENTS[event].format(**names)} EXECUTE FUNCTION {function}()",
        ]
    return statements


def _sqlite_triggers(market: str) -> list[str]:
    table, shares, percent = _MARKETS[market]
    newest_of = (
        (
            f"INSERT INTO short_interest_newest ({_COLUMNS}) SELECT {_FROM_TABLE} FROM {table} t "
            "WHERE t.code = {} ORDER BY t.trade_date DESC LIMIT 1 ON CONFLICT (code) DO NOTHING;"
        )
        .replace("{market}", market)
        .replace("{shares}", shares)
        .replace("{percent}", percent)
    )
    values = f"NEW.{shares}, NEW.{percent}, NEW.close_price, NEW.last_close_price, NEW.updated_at"
    recompute = f"""
        DELETE FROM short_interest_newest WHERE code IN (OLD.code, NEW.code);
        {newest_of.format("OLD.code")} {newest_of.format("NEW.code")}"""
    return [
        f"""CREATE TRIGGER {table}_newest_inserted AFTER INSERT ON {table} BEGIN
            INSERT INTO short_interest_newest ({_COLUMNS})
            VALUES ('{market}', NEW.code, NEW.trade_date, {values})
            ON CONFLICT (code) DO UPDATE SET {_SET_ALL.replace("EXCLUDED.", "excluded.")}
             WHERE short_interest_newest.trade_date <= excluded.trade_date;
        END""",
        f"""CREATE TRIGGER {table}_newest_updated AFTER UPDATE ON {table}
            WHEN OLD.code IS NEW.code AND OLD.trade_date IS NEW.trade_date BEGIN
            UPDATE short_interest_newest
               SET (short_shares, short_percent, close_price, last_close_price, updated_at) = ({values})
             WHERE code = NEW.code AND trade_date = NEW.trade_date;
        END""",
        f"""CREATE TRIGGER {table}_newest_deleted AFTER DELETE ON {table} BEGIN
            DELETE FROM short_interest_newest WHERE code = OLD.code AND trade_date = OLD.trade_date;
            {newest_of.format("OLD.code")}
        END""",
        f"CREATE TRIGGER {table}_newest_rekeyed AFTER UPDATE ON {table} "
        f"WHEN OLD.code IS NOT NEW.code OR OLD.trade_date IS NOT NEW.trade_date BEGIN {recompute} END",
    ]


def _union(template: str) -> str:
    return "UNION ALL".join(
        template.format(market=market, table=table, shares=shares, percent=percent)
        for market, (table, shares, percent) in _MARKETS.items()
    )


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, _, _ in _MARKETS.values():
        op.create_index(f"ix_{table}_trade_date", table, ["trade_date"])
    op.create_table(
        NEWEST,
        sa.Column("market", sa.String(2), nullable=False, comment="Market of the security: 'US' or 'HK'."),
        sa.Column("code", sa.String(32), nullable=False, comment="Full security code, e.g. US.AAPL or HK.00700."),
        sa.Column("trade_date", sa.Date(), nullable=False, comment="Trading day of the code's newest report."),
        sa.Column("short_shares", sa.BigInteger(), comment="Shares short: US shares_short, HK aggregated_short."),
        sa.Column("short_percent", sa.Double(), comment="Short position as a percentage (the number before the %)."),
        sa.Column("close_price", sa.Double(), comment="Closing price on trade_date, in the security's currency."),
        sa.Column("last_close_price", sa.Double(), comment="Closing price of the previous trading day."),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, comment="updated_at of the report's row (UTC)."
        ),
        sa.PrimaryKeyConstraint("code", name=f"pk_{NEWEST}"),
        sa.CheckConstraint("market IN ('US', 'HK')", name=f"ck_{NEWEST}_market"),
        comment="Each security's newest report in short_interest_latest's columns, kept by triggers on the "
        "short-interest tables.",
    )
    if postgres:
        # No write may land between filling the table and its triggers taking over.
        op.execute("LOCK TABLE us_short_interest, hk_short_interest IN SHARE ROW EXCLUSIVE MODE")
    for market, (table, shares, percent) in _MARKETS.items():
        columns = _FROM_TABLE.format(market=market, shares=shares, percent=percent)
        op.execute(
            f"INSERT INTO {NEWEST} ({_COLUMNS}) SELECT {columns} FROM {table} t "
            f"WHERE t.trade_date = (SELECT max(m.trade_date) FROM {table} m WHERE m.code = t.code)"
            if not postgres
            else f"INSERT INTO {NEWEST} ({_COLUMNS}) SELECT DISTINCT ON (t.code) {columns} FROM {table} t "
            "ORDER BY t.code, t.trade_date DESC"
        )
    if postgres:
        op.execute(_PG_RECOMPUTE)
        op.execute("REVOKE ALL ON FUNCTION short_interest_newest_recompute(VARCHAR[]) FROM PUBLIC")
    for market in _MARKETS:
        for statement in _pg_objects(market) if postgres else _sqlite_triggers(market):
            op.execute(statement)
    _replace_view("short_interest_latest", _LATEST)
    _replace_view("short_interest_changes", _union(_CHANGES_POSTGRES) if postgres else _OLD_CHANGES)
    if postgres:
        op.execute(
            f"DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{READER_ROLE}') THEN "
            f"GRANT SELECT ON {NEWEST}, short_interest_latest, short_interest_changes TO {READER_ROLE}; "
            f"END IF; END $$"
        )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    _replace_view("short_interest_latest", _OLD_LATEST)
    _replace_view("short_interest_changes", _OLD_CHANGES)
    for market, (table, _, _) in _MARKETS.items():
        for event in _PG_EVENTS if postgres else ("inserted", "updated", "deleted", "rekeyed"):
            op.execute(f"DROP TRIGGER {table}_newest_{event}" + (f" ON {table}" if postgres else ""))
            if postgres:
                op.execute(f"DROP FUNCTION {_pg_function(event, market)}()")
    if postgres:
        op.execute("DROP FUNCTION short_interest_newest_recompute(VARCHAR[])")
    op.drop_table(NEWEST)
    for table, _, _ in _MARKETS.values():
        op.drop_index(f"ix_{table}_trade_date", table_name=table)


def _replace_view(name: str, body: str) -> None:
    """PostgreSQL replaces in place, keeping the view's comments and grants; SQLite has no CREATE OR REPLACE."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE OR REPLACE VIEW {name} AS {body}")
    else:
        op.execute(f"DROP VIEW {name}")
        op.execute(f"CREATE VIEW {name} AS {body}")
