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
* short_interest_latest reads short_interest_newest, one row per code naming its newest trade_date, and
  fetches those rows by primary key. A skip scan over the key (a recursive query, no write-time work) was
  measured at 3-4 times the 100 ms target for 10,000 codes, as PostgreSQL 15 has no skip scan of its own.
  The table is kept by triggers, so every write shows at once whatever wrote it (the loader, a hand fix, a
  bulk import, COPY): a statement-level trigger folds each INSERT or COPY's rows into it in one grouped
  statement (a 50-row page adds one small upsert), a row trigger fires only when a key changes, deletes and
  TRUNCATE recompute or drop the codes that lost their newest row. Revisions of values, the loader's usual
  UPDATE, fire nothing. The triggers run as the table's owner (SECURITY DEFINER), so a writer needs no
  privilege on the bookkeeping table. Writes with triggers disabled (session_replication_role = replica)
  bypass it, as they bypass every constraint trigger.

SQLite keeps correct and simpler: row triggers keep the same newest table (and short_interest_latest reads
it), short_interest_changes keeps its window (SQLite has no LATERAL).
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

_LATEST = """
    SELECT CAST('{market}' AS VARCHAR(2)) AS market, t.code, t.trade_date, t.{shares} AS short_shares,
           t.{percent} AS short_percent, t.close_price, t.last_close_price, t.updated_at
      FROM short_interest_newest n
      JOIN {table} t ON t.code = n.code AND t.trade_date = n.trade_date
     WHERE n.market = '{market}'
"""

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

# PostgreSQL: one function per event, shared by both tables; TG_ARGV[0] is the table's market.
_PG_FUNCTIONS = {
    # Every INSERT or COPY statement: each code's newest inserted date, where newer than the stored one.
    # Codes already as new are filtered out first, so loading old history locks no bookkeeping row.
    "short_interest_newest_inserted": """
        BEGIN
            INSERT INTO short_interest_newest AS n (code, market, trade_date)
            SELECT g.code, TG_ARGV[0], g.newest
              FROM (SELECT code, max(trade_date) AS newest FROM new_rows GROUP BY code) g
             WHERE NOT EXISTS (SELECT 1 FROM short_interest_newest s
                                WHERE s.code = g.code AND s.trade_date >= g.newest)
             ORDER BY g.code
            ON CONFLICT (code) DO UPDATE SET trade_date = EXCLUDED.trade_date
             WHERE n.trade_date < EXCLUDED.trade_date;
            RETURN NULL;
        END
    """,
    # Every DELETE statement: codes whose newest row went get their new newest date, or leave.
    "short_interest_newest_deleted": """
        BEGIN
            WITH hit AS (SELECT DISTINCT o.code FROM old_rows o
                           JOIN short_interest_newest n ON n.code = o.code AND n.trade_date = o.trade_date),
                 recomputed AS (SELECT h.code, (SELECT max(s.trade_date) FROM short_interest s WHERE s.code = h.code)
                                       AS newest
                                  FROM hit h),
                 gone AS (DELETE FROM short_interest_newest n USING recomputed r
                           WHERE n.code = r.code AND r.newest IS NULL)
            UPDATE short_interest_newest n SET trade_date = r.newest FROM recomputed r
             WHERE n.code = r.code AND r.newest IS NOT NULL;
            RETURN NULL;
        END
    """,
    # A row whose code or trade_date changed (a hand fix): its new key may be newest, its old one may not be.
    "short_interest_newest_rekeyed": """
        DECLARE
            newest DATE;
        BEGIN
            INSERT INTO short_interest_newest AS n (code, market, trade_date)
            VALUES (NEW.code, TG_ARGV[0], NEW.trade_date)
            ON CONFLICT (code) DO UPDATE SET trade_date = EXCLUDED.trade_date
             WHERE n.trade_date < EXCLUDED.trade_date;
            IF EXISTS (SELECT 1 FROM short_interest_newest WHERE code = OLD.code AND trade_date = OLD.trade_date) THEN
                newest := (SELECT max(trade_date) FROM short_interest WHERE code = OLD.code);
                IF newest IS NULL THEN
                    DELETE FROM short_interest_newest WHERE code = OLD.code;
                ELSE
                    UPDATE short_interest_newest SET trade_date = newest WHERE code = OLD.code;
                END IF;
            END IF;
            RETURN NULL;
        END
    """,
    "short_interest_newest_truncated": """
        BEGIN
            DELETE FROM short_interest_newest WHERE market = TG_ARGV[0];
            RETURN NULL;
        END
    """,
}


def _pg_triggers(table: str, market: str) -> list[str]:
    return [
        f"CREATE TRIGGER {table}_newest_inserted AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION short_interest_newest_inserted('{market}')",
        f"CREATE TRIGGER {table}_newest_deleted AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION short_interest_newest_deleted('{market}')",
        f"CREATE TRIGGER {table}_newest_rekeyed AFTER UPDATE OF code, trade_date ON {table} FOR EACH ROW "
        f"WHEN (OLD.code IS DISTINCT FROM NEW.code OR OLD.trade_date IS DISTINCT FROM NEW.trade_date) "
        f"EXECUTE FUNCTION short_interest_newest_rekeyed('{market}')",
        f"CREATE TRIGGER {table}_newest_truncated AFTER TRUNCATE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION short_interest_newest_truncated('{market}')",
    ]


def _sqlite_triggers(table: str, market: str) -> list[str]:
    newer = f"""
        INSERT INTO short_interest_newest (code, market, trade_date) VALUES (NEW.code, '{market}', NEW.trade_date)
        ON CONFLICT (code) DO UPDATE SET trade_date = excluded.trade_date
         WHERE short_interest_newest.trade_date < excluded.trade_date;"""
    lost = f"""
        DELETE FROM short_interest_newest
         WHERE code = OLD.code AND NOT EXISTS (SELECT 1 FROM {table} WHERE code = OLD.code);
        UPDATE short_interest_newest SET trade_date = (SELECT max(trade_date) FROM {table} WHERE code = OLD.code)
         WHERE code = OLD.code AND trade_date = OLD.trade_date;"""
    return [
        f"CREATE TRIGGER {table}_newest_inserted AFTER INSERT ON {table} BEGIN {newer} END",
        f"CREATE TRIGGER {table}_newest_deleted AFTER DELETE ON {table} BEGIN {lost} END",
        f"CREATE TRIGGER {table}_newest_rekeyed AFTER UPDATE OF code, trade_date ON {table} "
        f"WHEN OLD.code IS NOT NEW.code OR OLD.trade_date IS NOT NEW.trade_date BEGIN {newer} {lost} END",
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
        sa.Column("code", sa.String(32), nullable=False, comment="Full security code, e.g. US.AAPL."),
        sa.Column("market", sa.String(2), nullable=False, comment="Market of the code: 'US' or 'HK'."),
        sa.Column(
            "trade_date", sa.Date(), nullable=False, comment="trade_date of the newest stored report of this code."
        ),
        sa.PrimaryKeyConstraint("code", name=f"pk_{NEWEST}"),
        sa.CheckConstraint("market IN ('US', 'HK')", name=f"ck_{NEWEST}_market"),
        comment="Newest report date per security, kept by triggers on the short-interest tables; "
        "short_interest_latest reads it.",
    )
    if postgres:
        # No write may land between filling the table and its triggers taking over.
        op.execute("LOCK TABLE us_short_interest, hk_short_interest IN SHARE ROW EXCLUSIVE MODE")
    for market, (table, _, _) in _MARKETS.items():
        op.execute(
            f"INSERT INTO {NEWEST} (code, market, trade_date) "
            f"SELECT code, '{market}', max(trade_date) FROM {table} GROUP BY code"
        )
    if postgres:
        for name, body in _PG_FUNCTIONS.items():
            op.execute(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER "
                f"SET search_path FROM CURRENT AS $body${body}$body$"
            )
            op.execute(f"REVOKE ALL ON FUNCTION {name}() FROM PUBLIC")
    for market, (table, _, _) in _MARKETS.items():
        for statement in (_pg_triggers if postgres else _sqlite_triggers)(table, market):
            op.execute(statement)
    _replace_view("short_interest_latest", _union(_LATEST))
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
    for table, _, _ in _MARKETS.values():
        for event in ("inserted", "deleted", "rekeyed", *(["truncated"] if postgres else [])):
            op.execute(f"DROP TRIGGER {table}_newest_{event}" + (f" ON {table}" if postgres else ""))
    if postgres:
        for name in _PG_FUNCTIONS:
            op.execute(f"DROP FUNCTION {name}()")
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
