"""Each code's newest report as known at a moment, read from its market's newest report dates, not code by code.

Revision ID: 0010_recent_cross_section
Revises: 0009_loader_role

Revision 0007's short_interest_latest_as_of(T) looked each code up on its own: a backward key scan of the
data table and one of the history table, and, for a row recorded after T, a probe for an earlier version.
About eight index and heap pages per code, 80,000 buffer visits for 10,000 codes, more than a small
shared_buffers keeps. But nearly every code's newest report known at T is one of its market's last reports
before T's date, and those rows lie together in the trade_date index. Each market's newest reports are now
found in two steps:

* the rows whose trade_date is on or before T's date and within a window before the newest such trade_date
  (US 21 days: FINRA settles twice a month and publishes 7 trading days later, so the report before an
  unpublished newest one is at most about 16 days older; HK 14 days: the SFC's weekly report, published a
  week later, a holiday week adding a few days), read through the trade_date index, with the history's
  versions of those dates, each kept when 0007 would keep it (held at T, or first recorded after T), and the
  newest per code taken;
* every other code (nothing in the window published and held at T: suspended, delisted, removed, or T within
  its market's publication lag of the first reports) looked up as revision 0007 does.

A candidate newer than a code's newest one in the window would lie in the window too (the window ends at T's
date), so the result is 0007's whatever the window holds; the window only decides how many codes take the
slower path. It is anchored on the data, not on T's date: as of today, tables whose newest report is a year
old still answer in one pass. A row recorded after T (the usual case when reading the past) needs the
look-up for an earlier version only if history holds a version of its date: one look-up of the window's
revised dates, then a hash probe per row. Codes are grouped in bytewise ("C") order, which makes the same
groups without the locale's slower comparisons.

An index on each history table's trade_date lets the window read the versions of its dates instead of the
whole history. Only a revision or a removal writes history, so a page write pays for it only on its revised
rows; the data tables get no index. The function keeps its signature, comment and EXECUTE privilege (CREATE
OR REPLACE); an index needs no grant. The downgrade restores 0007's body and drops the indexes. On SQLite only
the indexes are made (the function is PostgreSQL's).

Measured with bench/as_of_queries.py on PostgreSQL 15 (shared_buffers 128 MB) with 10,000 codes and 6.65 M
rows on a shared two-core machine (load average 3-5), alternating with revision 0009 on the same warehouse:
each code's newest report as known at the end of 2025-06-30 and now took 66-85 ms at the client (0.44-0.56 of
the 150 ms target; 31-39 ms in the server, the rest the client reading 10,000 rows) against 0009's 200-307
ms (1.33-2.04; 161-274 ms in the server). The 50-row page write with 3 rows revised stayed at 2.0-3.1 ms p50
(0.20-0.31 of 10 ms), and a page that revises nothing still writes no history.
"""

from __future__ import annotations

from alembic import op

from migrations.history import revision_module

revision = "0010_recent_cross_section"
down_revision = "0009_loader_role"
branch_labels = None
depends_on = None

_0007 = revision_module("0007_point_in_time.py")
FUNCTION = "short_interest_latest_as_of"
# Days before the newest trade_date on or before T's date that the one-pass read covers, per market.
WINDOW_DAYS = {"US": 21, "HK": 14}

# The window's first day, exclusive (format with 0007's _pg_names and window): from the trade_date index's end.
_START = "((SELECT max(x.trade_date) FROM {table} x WHERE x.trade_date <= {day}) - {window})"
# Each code's newest report in the window that is known and held at T, by revision 0007's rules: a current row
# held at T or first recorded after it, or a kept version of history held at T or first recorded after it.
# A row recorded after T is only looked up in history when history holds a version of its date (one look-up
# for the window, then a hash probe per row), and codes are sorted bytewise ("C"), which gives the same groups.
_RECENT = """
    SELECT DISTINCT ON (v.code COLLATE "C") {columns} FROM (
        SELECT t.code, t.trade_date, t.{shares} AS short_shares, t.{percent} AS short_percent, t.close_price,
               t.last_close_price, t.published_on, t.updated_at AS recorded_at
          FROM {table} t
         WHERE t.trade_date > {start} AND t.trade_date <= {day} AND t.published_on <= {day}
           AND (t.updated_at <= {as_of}
                OR t.trade_date NOT IN (SELECT DISTINCT g.trade_date FROM {history} g
                                         WHERE g.trade_date > {start} AND g.trade_date <= {day})
                OR {no_earlier_t})
        UNION ALL
        SELECT h.code, h.trade_date, h.{shares}, h.{percent}, h.close_price, h.last_close_price, h.published_on,
               h.recorded_at
          FROM {history} h
         WHERE h.trade_date > {start} AND h.trade_date <= {day} AND h.published_on <= {day}
           AND h.superseded_at > h.recorded_at
           AND ((h.recorded_at <= {as_of} AND h.superseded_at > {as_of})
                OR (h.recorded_at > {as_of} AND {no_earlier_h}))) v
     ORDER BY v.code COLLATE "C", v.trade_date DESC
"""
# The codes the window did not answer (each market's codes, and those only history holds), each looked up with
# revision 0007's backward key scans.
_OLDER = """
    SELECT {columns}
      FROM (SELECT n.code FROM short_interest_newest n
             WHERE n.market = '{market}' AND NOT EXISTS (SELECT 1 FROM recent r WHERE r.code = n.code)
            UNION SELECT d.code FROM {history} d
             WHERE d.deleted AND NOT EXISTS (SELECT 1 FROM recent r WHERE r.code = d.code)) k
     CROSS JOIN LATERAL (SELECT c.* FROM ({candidates}) c ORDER BY c.trade_date DESC LIMIT 1) v
"""


def _latest_as_of(market: str) -> str:
    names = _0007._pg_names(market)
    columns = _0007._AS_OF_COLUMNS.format(**names)
    no_earlier = {
        "no_earlier_t": _0007._NO_EARLIER.format(alias="t", start="t.updated_at", **names),
        "no_earlier_h": _0007._NO_EARLIER.format(alias="h", start="h.recorded_at", **names),
    }
    start = _START.format(window=WINDOW_DAYS[market], **names)
    recent = _RECENT.format(columns=columns, start=start, **no_earlier, **names)
    candidates = _0007._NEWEST_CANDIDATES.format(code="k.code", **no_earlier, **names)
    older = _OLDER.format(columns=columns, candidates=candidates, **names)
    return f"SELECT * FROM (WITH recent AS MATERIALIZED ({recent}) SELECT * FROM recent UNION ALL {older}) {market}"


def _index(market: str) -> tuple[str, str]:
    history = _0007._history(market)
    return f"ix_{history}_trade_date", history


def upgrade() -> None:
    for market in _0007._MARKETS:
        op.create_index(*_index(market), ["trade_date"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_0007._function_statement(FUNCTION, _latest_as_of))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_0007._function_statement(FUNCTION, _0007._pg_latest_as_of))
    for market in _0007._MARKETS:
        name, history = _index(market)
        op.drop_index(name, table_name=history)
