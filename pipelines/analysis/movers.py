"""The questions analysts ask first after a refresh: which codes' short interest moved most, and which US
codes would take longest to cover.

Both read the analyst views (`short_interest_latest`, `short_interest_changes`), so they answer exactly what
an analyst's own SQL would, on PostgreSQL and SQLite alike.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from pipelines.warehouse.schema import securities, us_short_interest

_latest = sa.table("short_interest_latest", sa.column("code"), sa.column("trade_date"))
_changes = sa.table(
    "short_interest_changes",
    *(
        sa.column(name)
        for name in (
            "market",
            "code",
            "trade_date",
            "short_shares",
            "short_percent",
            "previous_trade_date",
            "previous_short_shares",
            "short_shares_change",
            "short_shares_change_percent",
            "name",
        )
    ),
)


@dataclass(frozen=True, slots=True)
class Mover:
    """A code's newest report against its previous one."""

    market: str
    code: str
    trade_date: date
    previous_trade_date: date
    short_shares: int | None
    short_shares_change: int | None
    change_percent: float | None
    short_percent: float | None
    name: str | None = None  # from the securities table (migration 0008); None for a code never resolved


@dataclass(frozen=True, slots=True)
class CoverLeader:
    """A US code's newest report, for ranking by days to cover."""

    code: str
    trade_date: date
    days_to_cover: float
    shares_short: int | None
    short_percent: float | None
    name: str | None = None


def _date(value: object) -> date:
    # SQLite returns view columns without a declared type as ISO text.
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def top_movers(conn: sa.Connection, codes: Collection[str] | None = None, *, limit: int = 10) -> list[Mover]:
    """Codes whose newest report changed most from the previous one, by absolute change in percent."""
    c = _changes.c
    query = (
        sa.select(
            c.market,
            c.code,
            c.trade_date,
            c.previous_trade_date,
            c.short_shares,
            c.short_shares_change,
            c.short_shares_change_percent,
            c.short_percent,
            c.name,
        )
        .join(_latest, sa.and_(_latest.c.code == c.code, _latest.c.trade_date == c.trade_date))
        .where(c.short_shares_change_percent.is_not(None))
        .order_by(sa.func.abs(c.short_shares_change_percent).desc(), c.code)
        .limit(limit)
    )
    newest_dates = sa.select(_latest.c.trade_date).distinct()
    if codes is not None:
        query = query.where(c.code.in_(sorted(codes)))
        newest_dates = newest_dates.where(_latest.c.code.in_(sorted(codes)))
    # The newest dates as constants: a filter on trade_date reaches the tables below the view (a join does not).
    query = query.where(c.trade_date.in_(conn.execute(newest_dates).scalars().all()))
    return [
        Mover(
            market=r[0],
            code=r[1],
            trade_date=_date(r[2]),
            previous_trade_date=_date(r[3]),
            short_shares=r[4],
            short_shares_change=r[5],
            change_percent=None if r[6] is None else float(r[6]),
            short_percent=r[7],
            name=r[8],
        )
        for r in conn.execute(query)
    ]


def days_to_cover_leaders(
    conn: sa.Connection, codes: Collection[str] | None = None, *, limit: int = 10
) -> list[CoverLeader]:
    """US codes with the most days to cover in their newest report."""
    u = us_short_interest.c
    query = (
        sa.select(u.code, u.trade_date, u.days_to_cover, u.shares_short, u.short_percent, securities.c.name)
        .join(_latest, sa.and_(_latest.c.code == u.code, _latest.c.trade_date == u.trade_date))
        .outerjoin(securities, securities.c.code == u.code)
        .where(u.days_to_cover.is_not(None))
        .order_by(u.days_to_cover.desc(), u.code)
        .limit(limit)
    )
    if codes is not None:
        query = query.where(u.code.in_(sorted(code for code in codes if code.startswith("US."))))
    return [CoverLeader(r[0], r[1], float(r[2]), r[3], r[4], r[5]) for r in conn.execute(query)]
