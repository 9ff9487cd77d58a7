"""One code's short-interest history in the columns a chart or a report reads, from either market's table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from pipelines.warehouse.schema import PERCENT_COLUMN, SHARES_COLUMN, securities, table_for
from proto_client.security import Market, parse_code

# What "short interest as a percentage" means in each market's source.
PERCENT_LABEL = {Market.US: "% of float", Market.HK: "% of issued shares"}


@dataclass(frozen=True, slots=True)
class CodeSeries:
    """A code's reports, oldest first; a value the source left out is None."""

    code: str
    market: Market
    dates: tuple[date, ...]
    short_shares: tuple[int | None, ...]
    short_percent: tuple[float | None, ...]
    close_price: tuple[float | None, ...]
    name: str | None = None  # from the securities table; None for a code never resolved

    @property
    def label(self) -> str:
        """`HK.00700 TENCENT`, or the code alone."""
        return f"{self.code} {self.name}" if self.name else self.code

    def __len__(self) -> int:
        return len(self.dates)


def read_series(conn: sa.Connection, code: str, *, since: date | None = None) -> CodeSeries:
    """`code`'s stored reports from `since` on (all when None); raises InvalidCodeError for a malformed code."""
    market = parse_code(code).market
    table = table_for(market)
    query = (
        sa.select(
            table.c.trade_date,
            table.c[SHARES_COLUMN[market]],
            table.c[PERCENT_COLUMN[market]],
            table.c.close_price,
        )
        .where(table.c.code == code)
        .order_by(table.c.trade_date)
    )
    if since is not None:
        query = query.where(table.c.trade_date >= since)
    rows = conn.execute(query).all()
    name = conn.execute(sa.select(securities.c.name).where(securities.c.code == code)).scalar_one_or_none()
    return CodeSeries(
        code=code,
        market=market,
        dates=tuple(r[0] for r in rows),
        short_shares=tuple(r[1] for r in rows),
        short_percent=tuple(r[2] for r in rows),
        close_price=tuple(r[3] for r in rows),
        name=name,
    )
