"""Point in time: each report's publication day, every version a row has held, and reads as of any moment.

Revision ID: 0007_point_in_time
Revises: 0006_plan_trigger_statements

A backtest that joins on trade_date trades on figures nobody had yet, and a revision used to overwrite the
row. Now:

* published_on on both data tables: the day the source published the report (US: 7 NYSE trading days after
  the settlement date; HK: the SFC's publication day), from proto_client.publication, the calendar the
  simulated gateway and the schedules use. This revision fills it for the rows already stored, one calendar
  look-up per distinct trade_date (a few thousand), joined in one UPDATE; the loader sets it on every insert.
  It is not a value of the report: the upsert never compares or rewrites it.
* <market>_short_interest_history keeps every version a row held before its current one, with the interval
  the warehouse held it: recorded_at (the row's updated_at then) to superseded_at (when an UPDATE replaced
  it or a DELETE, TRUNCATE or change of key removed it; `deleted` marks the latter). Triggers write it in
  the statement's own transaction, whatever writes the tables: a row trigger fires only when a value or the
  key changes, so the page upsert, which updates revised rows only, writes history for those alone (a
  refresh that revises nothing writes none), and moves updated_at to the transaction's time, so a hand fix
  that leaves updated_at alone still starts a new version where the old one ended. Deletes are copied from
  the statement's transition table in one INSERT; TRUNCATE copies the table before it empties it. On
  SQLite, row triggers do the same (AFTER triggers, which set updated_at with a second UPDATE when a hand
  fix did not move it).
* Reads as of a moment T (published by T's date in UTC, the day FINRA's evening and the SFC's after-close
  publications fall on in UTC): a report is returned with the version that was current at T; one the
  warehouse first recorded after T (history loaded later) comes back with its earliest version and
  backfilled = true; one removed before T (and not held at T) is absent. On PostgreSQL:
  short_interest_as_of(T), an SQL function the planner inlines, so a filter on code reaches the tables
  (one code's history as of T is a key range scan), and short_interest_latest_as_of(T), each code's newest
  report as of T, found code by code with a backward key scan that stops at the first report published by
  then. The Python reader builds the same query for both databases (pipelines/warehouse/as_of.py).
* short_interest_revisions: every changed value with its old and new value and when it changed.

Measured on PostgreSQL 15 with 10,000 codes and 6.65 M rows on a busy two-core machine (bench/as_of_queries.py):
the upgrade took 68 s, the tables locked throughout (the UPDATE rewrites every row; the newest table's
triggers are off meanwhile, as published_on is none of its columns); the 50-row page write stays at 1.3-1.6 ms
p50 with 3 rows revised and writes no history when nothing changed; one code's history as of a moment takes
1.3-2 ms at the client (0.3 ms in the server); each code's newest report as known then 115-185 ms, about 120-155
ms of CPU, a backward key scan and a history probe per code.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import sqlalchemy as sa
from alembic import op

from migrations.history import revision_module
from proto_client.publication import CalendarRangeError, published_on
from proto_client.security import Market

revision = "0007_point_in_time"
down_revision = "0006_plan_trigger_statements"
branch_labels = None
depends_on = None

_0001 = revision_module("0001_initial.py")
_0003 = revision_module("0003_fast_analyst_views.py")
if "_newest_updated AFTER UPDATE" not in _0003._sqlite_triggers("US")[1]:  # pragma: no cover - 0003 is frozen
    raise RuntimeError("revision 0003's SQLite UPDATE trigger is not the one this revision orders")

READER_ROLE = "shortinterest_reader"
REVISIONS = "short_interest_revisions"


def _us_values() -> list[tuple[str, sa.types.TypeEngine[object], str]]:
    return [
        ("shares_short", sa.BigInteger(), "Shares sold short and not yet covered (shares)."),
        (
            "short_percent",
            sa.Double(),
            "Short interest as a percentage: the number before the % sign (12.34 means 12.34 %).",
        ),
        ("avg_daily_share_volume", sa.BigInteger(), "Average daily share volume (shares)."),
        ("days_to_cover", sa.Double(), "Days to cover: shares_short / avg_daily_share_volume (days)."),
    ]


def _hk_values() -> list[tuple[str, sa.types.TypeEngine[object], str]]:
    return [
        ("aggregated_short", sa.BigInteger(), "Aggregated reportable short position, open shares (shares)."),
        (
            "aggregated_short_ratio",
            sa.Double(),
            "Aggregated short position as a percentage of issued shares: the number before the % sign.",
        ),
    ]


# Market -> (table, its shares-short column, its short-percent column, its own value columns with their types).
_MARKETS = {
    "US": ("us_short_interest", "shares_short", "short_percent", _us_values),
    "HK": ("hk_short_interest", "aggregated_short", "aggregated_short_ratio", _hk_values),
}

PUBLISHED_ON_COMMENT = {
    "US": "Day FINRA published this report: 7 NYSE trading days after the settlement date (one that is not a "
    "trading day counts from the trading day before it). Set by the loader from proto_client.publication.",
    "HK": "Day the SFC published this report: the Friday a week after the position date's week, or the last "
    "HKEX trading day before it. Set by the loader from proto_client.publication.",
}
HISTORY_COMMENT = (
    "Every earlier version of a {table} row, written by triggers whenever a value or the key changes or the "
    "row is deleted; the current version is the row in {table}."
)
_HISTORY_OWN = {
    "version_id": "Order in which versions were recorded.",
    "recorded_at": "When the warehouse began to hold this version (the row's updated_at then, UTC).",
    "superseded_at": "When this version stopped being current: replaced by an update, or removed (UTC).",
    "deleted": "True when the row was removed (DELETE, TRUNCATE, or its code or trade_date changed) rather "
    "than replaced by new values.",
}
REVISIONS_COMMENT = "Every change of a stored value: old and new value and when it changed, from the history tables."
_REVISIONS_COLUMNS = {
    "market": "Market of the security: 'US' or 'HK'.",
    "code": "Full security code with market prefix, e.g. US.AAPL or HK.00700.",
    "trade_date": "Trading day of the report, in the market's time zone.",
    "column_name": "Column of the market's table whose value changed.",
    "old_value": "Value before the change.",
    "new_value": "Value after the change; NULL when the row was removed.",
    "deleted": "True when the row was removed rather than revised.",
    "revised_at": "When the warehouse recorded the change (UTC).",
}


def _value_columns(market: str) -> list[str]:
    """The source's values a row carries besides its key: a change of any of them is a revision."""
    return ["source_timestamp", *(name for name, _, _ in _MARKETS[market][3]()), "close_price", "last_close_price"]


def _history(market: str) -> str:
    return f"{_MARKETS[market][0]}_history"


def _history_columns(market: str) -> list[sa.Column[object]]:
    """The data table's columns (as revision 0001 wrote them) but updated_at, then the version's own."""
    return [
        sa.Column(
            "version_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
            comment=_HISTORY_OWN["version_id"],
        ),
        *_0001._common_head(market),
        *(sa.Column(name, kind, comment=comment) for name, kind, comment in _MARKETS[market][3]()),
        *_0001._prices(market),
        sa.Column("published_on", sa.Date(), comment=PUBLISHED_ON_COMMENT[market]),
        sa.Column(
            "first_loaded_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="When this row was first loaded into the warehouse (UTC).",
        ),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, comment=_HISTORY_OWN["recorded_at"]),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=False, comment=_HISTORY_OWN["superseded_at"]),
        sa.Column("deleted", sa.Boolean(), nullable=False, comment=_HISTORY_OWN["deleted"]),
    ]


def _names(market: str) -> dict[str, str]:
    table, shares, percent, _ = _MARKETS[market]
    values = _value_columns(market)
    return {
        "market": market,
        "table": table,
        "history": _history(market),
        "shares": shares,
        "percent": percent,
        "values": ", ".join(values),
        "old_values": ", ".join(f"OLD.{c}" for c in values),
        "o_values": ", ".join(f"o.{c}" for c in values),
    }


# PostgreSQL. A value or the key changed: the old version goes to history, the new one starts now.
_PG_REVISED = """
    INSERT INTO {history} (code, trade_date, {values}, published_on, first_loaded_at, recorded_at,
                           superseded_at, deleted)
    VALUES (OLD.code, OLD.trade_date, {old_values}, OLD.published_on, OLD.first_loaded_at, OLD.updated_at,
            GREATEST(current_timestamp, OLD.updated_at),
            OLD.code IS DISTINCT FROM NEW.code OR OLD.trade_date IS DISTINCT FROM NEW.trade_date);
    NEW.updated_at := GREATEST(current_timestamp, OLD.updated_at);
    RETURN NEW;
"""
_PG_REMOVED = """
    INSERT INTO {history} (code, trade_date, {values}, published_on, first_loaded_at, recorded_at,
                           superseded_at, deleted)
    SELECT o.code, o.trade_date, {o_values}, o.published_on, o.first_loaded_at, o.updated_at,
           GREATEST(current_timestamp, o.updated_at), TRUE
      FROM {source} o ORDER BY o.code, o.trade_date;
    RETURN NULL;
"""


def _changed(market: str, old: str = "OLD", new: str = "NEW", distinct: str = "IS DISTINCT FROM") -> str:
    columns = ["code", "trade_date", *_value_columns(market)]
    return " OR ".join(f"{old}.{c} {distinct} {new}.{c}" for c in columns)


def _pg_objects(market: str) -> list[str]:
    names = _names(market)
    table, history = names["table"], names["history"]
    functions = {
        "revised": (_PG_REVISED.format(**names), f"BEFORE UPDATE ON {table} FOR EACH ROW WHEN ({_changed(market)})"),
        "deleted": (
            _PG_REMOVED.format(source="old_rows", **names),
            f"AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT",
        ),
        "truncated": (_PG_REMOVED.format(source=table, **names), f"BEFORE TRUNCATE ON {table} FOR EACH STATEMENT"),
    }
    statements = []
    for event, (body, when) in functions.items():
        function = f"{history}_{event}"
        statements += [
            f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER "
            f"SET search_path FROM CURRENT AS $body$ BEGIN {body} END $body$",
            f"REVOKE ALL ON FUNCTION {function}() FROM PUBLIC",
            f"CREATE TRIGGER {table}_history_{event} {when} EXECUTE FUNCTION {function}()",
        ]
    return statements


_PG_EVENTS = ("revised", "deleted", "truncated")

# SQLite's clock as the loader writes timestamps (naive UTC, microseconds); the same within one statement.
_SQLITE_NOW = "(strftime('%Y-%m-%d %H:%M:%f', 'now') || '000')"


def _sqlite_triggers(market: str) -> list[str]:
    names = _names(market)
    table, history = names["table"], names["history"]
    ends = f"CASE WHEN NEW.updated_at > OLD.updated_at THEN NEW.updated_at ELSE max({_SQLITE_NOW}, OLD.updated_at) END"
    insert = (
        f"INSERT INTO {history} (code, trade_date, {names['values']}, published_on, first_loaded_at, recorded_at, "
        f"superseded_at, deleted) VALUES (OLD.code, OLD.trade_date, {names['old_values']}, OLD.published_on, "
        "OLD.first_loaded_at, OLD.updated_at, {ends}, {deleted});"
    )
    rekeyed = "OLD.code IS NOT NEW.code OR OLD.trade_date IS NOT NEW.trade_date"
    return [
        f"""CREATE TRIGGER {table}_history_revised AFTER UPDATE ON {table}
            WHEN {_changed(market, distinct="IS NOT")} BEGIN
            {insert.format(ends=ends, deleted=f"({rekeyed})")}
            UPDATE {table} SET updated_at = max({_SQLITE_NOW}, OLD.updated_at)
             WHERE code = NEW.code AND trade_date = NEW.trade_date AND NOT (NEW.updated_at > OLD.updated_at);
        END""",
        f"""CREATE TRIGGER {table}_history_deleted AFTER DELETE ON {table} BEGIN
            {insert.format(ends=f"max({_SQLITE_NOW}, OLD.updated_at)", deleted="1")}
        END""",
    ]


_SQLITE_EVENTS = ("revised", "deleted")

# One market's versions (format with _names and the spellings of the moment and its UTC date): the current rows
# and the history's versions that were current for a while, each with the interval the warehouse held it.
_VERSIONS = """
    SELECT t.code, t.trade_date, t.{shares} AS short_shares, t.{percent} AS short_percent, t.close_price,
           t.last_close_price, t.published_on, t.updated_at AS recorded_at,
           CAST(NULL AS TIMESTAMP WITH TIME ZONE) AS superseded_at
      FROM {table} t
     WHERE t.published_on <= {day} AND t.trade_date <= {day}
    UNION ALL
    SELECT h.code, h.trade_date, h.{shares}, h.{percent}, h.close_price, h.last_close_price, h.published_on,
           h.recorded_at, h.superseded_at
      FROM {history} h
     WHERE h.superseded_at > h.recorded_at AND h.published_on <= {day} AND h.trade_date <= {day}
"""
# Each key's first version in history, joined by key: a filter on code reaches it, and no row needs a look-up.
_FIRST_RECORDED = """
    SELECT w.code, w.trade_date, min(w.recorded_at) AS first_recorded
      FROM {history} w WHERE w.superseded_at > w.recorded_at GROUP BY w.code, w.trade_date
"""
# The version held at the moment, or, for a report first recorded after it, the earliest version (backfilled).
_HELD = """
    (v.recorded_at <= {as_of} AND (v.superseded_at IS NULL OR v.superseded_at > {as_of}))
    OR (v.recorded_at > {as_of} AND (f.first_recorded IS NULL OR f.first_recorded >= v.recorded_at))
"""
_AS_OF_COLUMNS = (
    "CAST('{market}' AS VARCHAR(2)) AS market, v.code, v.trade_date, v.short_shares, v.short_percent, "
    "v.close_price, v.last_close_price, v.recorded_at AS updated_at, v.published_on, "
    "v.recorded_at AS version_recorded_at, v.recorded_at > {as_of} AS backfilled"
)
# No version of the key (alias {alias}) in history began before {start}.
_NO_EARLIER = """NOT EXISTS (
    SELECT 1 FROM {history} w
     WHERE w.code = {alias}.code AND w.trade_date = {alias}.trade_date AND w.superseded_at > w.recorded_at
       AND w.recorded_at < {start})"""
# Each code's newest report as of the moment: the newest current row published by then that is held or first
# recorded later, and the newest such version in history, found by backward key scans that stop at the first
# (format with _names, the moment's spellings and {code}, the code to look for).
_NEWEST_CANDIDATES = """
    SELECT * FROM (
        SELECT t.code, t.trade_date, t.{shares} AS short_shares, t.{percent} AS short_percent, t.close_price,
               t.last_close_price, t.published_on, t.updated_at AS recorded_at
          FROM {table} t
         WHERE t.code = {code} AND t.trade_date <= {day} AND t.published_on <= {day}
           AND (t.updated_at <= {as_of} OR {no_earlier_t})
         ORDER BY t.trade_date DESC LIMIT 1) current_row
    UNION ALL
    SELECT * FROM (
        SELECT h.code, h.trade_date, h.{shares}, h.{percent}, h.close_price, h.last_close_price, h.published_on,
               h.recorded_at
          FROM {history} h
         WHERE h.code = {code} AND h.trade_date <= {day} AND h.published_on <= {day}
           AND h.superseded_at > h.recorded_at
           AND ((h.recorded_at <= {as_of} AND h.superseded_at > {as_of})
                OR (h.recorded_at > {as_of} AND {no_earlier_h}))
         ORDER BY h.trade_date DESC LIMIT 1) kept_version
"""
_PG_DAY = "CAST(as_of AT TIME ZONE 'UTC' AS DATE)"
_PG_RETURNS = (
    "TABLE (market VARCHAR(2), code VARCHAR(32), trade_date DATE, short_shares BIGINT, "
    "short_percent DOUBLE PRECISION, close_price DOUBLE PRECISION, last_close_price DOUBLE PRECISION, "
    "updated_at TIMESTAMP WITH TIME ZONE, published_on DATE, version_recorded_at TIMESTAMP WITH TIME ZONE, "
    "backfilled BOOLEAN)"
)


def _pg_names(market: str) -> dict[str, str]:
    return {**_names(market), "day": _PG_DAY, "as_of": "as_of"}


def _pg_as_of(market: str) -> str:
    names = _pg_names(market)
    return (
        f"SELECT {_AS_OF_COLUMNS.format(**names)} FROM ({_VERSIONS.format(**names)}) v "
        f"LEFT JOIN ({_FIRST_RECORDED.format(**names)}) f ON f.code = v.code AND f.trade_date = v.trade_date "
        f"WHERE {_HELD.format(**names)}"
    )


def _pg_latest_as_of(market: str) -> str:
    names = _pg_names(market)
    candidates = _NEWEST_CANDIDATES.format(
        code="k.code",
        no_earlier_t=_NO_EARLIER.format(alias="t", start="t.updated_at", **names),
        no_earlier_h=_NO_EARLIER.format(alias="h", start="h.recorded_at", **names),
        **names,
    )
    return f"""
        SELECT {_AS_OF_COLUMNS.format(**names)}
          FROM (SELECT n.code FROM short_interest_newest n WHERE n.market = '{market}'
                UNION SELECT d.code FROM {names["history"]} d WHERE d.deleted) k
         CROSS JOIN LATERAL (SELECT c.* FROM ({candidates}) c ORDER BY c.trade_date DESC LIMIT 1) v
    """


_PG_FUNCTIONS = {
    "short_interest_as_of": (
        _pg_as_of,
        "Each code's reports published by as_of's date (UTC), with the values the warehouse held at as_of; a "
        "report first recorded after as_of comes with its earliest version and backfilled = true.",
    ),
    "short_interest_latest_as_of": (
        _pg_latest_as_of,
        "Each code's newest report as known at as_of: the newest row of short_interest_as_of(as_of) per code.",
    ),
}


def _revisions(market: str, distinct: str) -> str:
    names = _names(market)
    table, history = names["table"], names["history"]
    columns = _value_columns(market)
    listed = " UNION ALL ".join(f"SELECT '{c}' AS name" for c in columns)

    def pick(alias: str) -> str:
        cases = " ".join(f"WHEN '{c}' THEN CAST({alias}.{c} AS DOUBLE PRECISION)" for c in columns)
        return f"CASE c.name {cases} END"

    # The next version is the key's next history row, or else its current row (none once it was removed).
    return f"""
        SELECT * FROM (
            SELECT CAST('{market}' AS VARCHAR(2)) AS market, h.code, h.trade_date, c.name AS column_name,
                   {pick("h")} AS old_value,
                   CASE WHEN h.deleted THEN NULL WHEN n.version_id IS NOT NULL THEN {pick("n")}
                        ELSE {pick("t")} END AS new_value,
                   h.deleted, h.superseded_at AS revised_at
              FROM {history} h
              LEFT JOIN {history} n ON n.version_id = (
                    SELECT min(x.version_id) FROM {history} x
                     WHERE x.code = h.code AND x.trade_date = h.trade_date AND x.version_id > h.version_id)
              LEFT JOIN {table} t ON t.code = h.code AND t.trade_date = h.trade_date
             CROSS JOIN ({listed}) c
        ) r WHERE r.old_value {distinct} r.new_value
    """


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    for market, (table, _, _, _) in _MARKETS.items():
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("published_on", sa.Date(), comment=PUBLISHED_ON_COMMENT[market]))
    if postgres:
        # No write may land between filling the column and the history triggers taking over.
        op.execute("LOCK TABLE us_short_interest, hk_short_interest IN SHARE ROW EXCLUSIVE MODE")
    for market in _MARKETS:
        _fill_published_on(bind, market)
        op.create_table(
            _history(market),
            *_history_columns(market),
            sa.PrimaryKeyConstraint("version_id", name=f"pk_{_history(market)}"),
            comment=HISTORY_COMMENT.format(table=_MARKETS[market][0]),
        )
        op.create_index(f"ix_{_history(market)}_key", _history(market), ["code", "trade_date", "recorded_at"])
        for statement in _pg_objects(market) if postgres else _sqlite_triggers(market):
            op.execute(statement)
        if not postgres:
            _newest_update_fires_first(market)
    distinct = "IS DISTINCT FROM" if postgres else "IS NOT"
    op.execute(f"CREATE VIEW {REVISIONS} AS " + " UNION ALL ".join(_revisions(m, distinct) for m in _MARKETS))
    if postgres:
        _create_functions()
        _comment()
        histories = ", ".join(_history(m) for m in _MARKETS)
        op.execute(
            f"DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{READER_ROLE}') THEN "
            f"GRANT SELECT ON {histories}, {REVISIONS} TO {READER_ROLE}; END IF; END $$"
        )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        for function in _PG_FUNCTIONS:
            op.execute(f"DROP FUNCTION {function}(TIMESTAMP WITH TIME ZONE)")
    op.execute(f"DROP VIEW {REVISIONS}")
    for market, (table, _, _, _) in _MARKETS.items():
        for event in _PG_EVENTS if postgres else _SQLITE_EVENTS:
            op.execute(f"DROP TRIGGER {table}_history_{event}" + (f" ON {table}" if postgres else ""))
            if postgres:
                op.execute(f"DROP FUNCTION {_history(market)}_{event}()")
        op.drop_index(f"ix_{_history(market)}_key", table_name=_history(market))
        op.drop_table(_history(market))
        # SQLite drops the column in place (3.35+): a batch would copy the table and lose its triggers.
        op.execute(f"ALTER TABLE {table} DROP COLUMN published_on")


def _newest_update_fires_first(market: str) -> None:
    """SQLite fires the triggers of one event newest first: revision 0003's UPDATE trigger of the newest table,
    made again, runs before the history trigger, whose own UPDATE of updated_at (for a hand fix that left it)
    then reaches the newest table last."""
    table = _MARKETS[market][0]
    op.execute(f"DROP TRIGGER {table}_newest_updated")
    op.execute(_0003._sqlite_triggers(market)[1])


def _fill_published_on(bind: sa.Connection, market: str) -> None:
    """One calendar look-up per distinct trade_date, then one UPDATE joining them; a date outside the calendar's
    span stays NULL (the loader refuses such rows)."""
    table = _MARKETS[market][0]
    days = bind.execute(sa.text(f"SELECT DISTINCT trade_date FROM {table}")).scalars().all()
    found: list[tuple[date, date]] = []
    for day in days:
        day = date.fromisoformat(day) if isinstance(day, str) else day  # SQLite's text
        try:
            found.append((day, published_on(Market[market], day)))
        except CalendarRangeError:
            continue
    if not found:
        return
    op.execute("CREATE TEMPORARY TABLE publication_days (trade_date DATE PRIMARY KEY, published_on DATE NOT NULL)")
    fill = sa.table("publication_days", sa.column("trade_date", sa.Date()), sa.column("published_on", sa.Date()))
    bind.execute(fill.insert(), [{"trade_date": d, "published_on": p} for d, p in found])
    if bind.dialect.name == "postgresql":
        # published_on feeds no trigger's table: the newest table's UPDATE trigger would only rewrite its rows.
        op.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        op.execute(
            f"UPDATE {table} t SET published_on = p.published_on FROM publication_days p "
            "WHERE p.trade_date = t.trade_date"
        )
        op.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
    else:
        op.execute(
            f"UPDATE {table} SET published_on = (SELECT p.published_on FROM publication_days p "
            f"WHERE p.trade_date = {table}.trade_date)"
        )
    op.execute("DROP TABLE publication_days")


def _create_functions() -> None:
    for name, (body, comment) in _PG_FUNCTIONS.items():
        op.execute(_function_statement(name, body))
        op.execute(f"COMMENT ON FUNCTION {name}(TIMESTAMP WITH TIME ZONE) IS {_quote(comment)}")


def _function_statement(name: str, body: Callable[[str], str]) -> str:
    """LANGUAGE sql, STABLE, not STRICT and not SECURITY DEFINER: the planner inlines short_interest_as_of into
    the caller, so a filter on code reaches the tables. The newest-per-code function runs its own plan without
    JIT: its estimate (a key scan per code) passes jit_above_cost, and compiling took 30 ms of its 150."""
    union = " UNION ALL ".join(body(market) for market in _MARKETS)
    options = " SET jit = off" if name == "short_interest_latest_as_of" else ""
    return (
        f"CREATE OR REPLACE FUNCTION {name}(as_of TIMESTAMP WITH TIME ZONE) RETURNS {_PG_RETURNS} "
        f"LANGUAGE sql STABLE{options} AS $body$ {union} $body$"
    )


def _comment() -> None:
    op.execute(f"COMMENT ON VIEW {REVISIONS} IS {_quote(REVISIONS_COMMENT)}")
    for column, text in _REVISIONS_COLUMNS.items():
        op.execute(f"COMMENT ON COLUMN {REVISIONS}.{column} IS {_quote(text)}")
