"""Read-side helpers the crawler and `shortinterest status` need from the data tables."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from pipelines.warehouse.schema import DATA_TABLES
from proto_client.security import parse_code


def newest_trade_date(conn: sa.Connection, code: str) -> date | None:
    """The newest trade_date stored for `code`: where an incremental crawl can stop."""
    newest: date | None = conn.execute(_NEWEST_TRADE_DATE[parse_code(code).market], {"code": code}).scalar_one()
    return newest


# One statement per market, reused: a crawl asks twice per code, and building the statement (and SQLAlchemy's
# cache key for it) cost more client CPU than running it.
_NEWEST_TRADE_DATE = {
    market: sa.select(sa.func.max(table.c.trade_date)).where(table.c.code == sa.bindparam("code"))
    for market, table in DATA_TABLES.items()
}


def row_counts(conn: sa.Connection) -> dict[str, int]:
    """Stored rows per code, both markets."""
    counts: dict[str, int] = {}
    for table in DATA_TABLES.values():
        query = sa.select(table.c.code, sa.func.count()).group_by(table.c.code).order_by(table.c.code)
        counts.update({code: int(count) for code, count in conn.execute(query)})
    return counts
