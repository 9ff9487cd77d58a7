"""Read-side helpers the crawler and `shortinterest status` need from the data tables."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from pipelines.warehouse.schema import DATA_TABLES, table_for
from proto_client.security import parse_code


def newest_trade_date(conn: sa.Connection, code: str) -> date | None:
    """The newest trade_date stored for `code`: where an incremental crawl can stop."""
    table = table_for(parse_code(code).market)
    return conn.execute(sa.select(sa.func.max(table.c.trade_date)).where(table.c.code == code)).scalar_one()


def row_counts(conn: sa.Connection) -> dict[str, int]:
    """Stored rows per code, both markets."""
    counts: dict[str, int] = {}
    for table in DATA_TABLES.values():
        query = sa.select(table.c.code, sa.func.count()).group_by(table.c.code).order_by(table.c.code)
        counts.update({code: int(count) for code, count in conn.execute(query)})
    return counts
