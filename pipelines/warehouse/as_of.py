"""The warehouse as it was known at a moment, for research that must not see the future.

A report counts as known at moment T from its publication day on (`published_on` <= T's date in UTC: FINRA's
evening and the SFC's after-close publications fall on that UTC date), with the version of its values the
warehouse held at T (the row, or a version kept in the history tables by migration 0007's triggers). A report
the warehouse first recorded after T (history loaded later) comes with its earliest version and
`backfilled` true, since that value may include revisions made before it was loaded; one removed before T is
absent. The same query runs on PostgreSQL and SQLite; PostgreSQL's `short_interest_as_of(as_of)` answers the
same for SQL users.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import sqlalchemy as sa

from pipelines.warehouse.schema import UtcDateTime, history_for, table_for
from proto_client.security import Market

# Columns an as-of read adds to a row: when its version was recorded, and whether that was after the moment.
RECORDED_AT = "version_recorded_at"
BACKFILLED = "backfilled"


class AsOfError(ValueError):
    """An as-of moment that cannot be read; the message names it."""


def as_of_moment(value: date | datetime | str) -> datetime:
    """The moment an as-of read looks from, aware and in UTC.

    A date means the end of that day in UTC (what was known on that day); a timestamp without a zone is read
    as UTC; text is YYYY-MM-DD or an ISO 8601 timestamp.
    """
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value) if len(value.strip()) == 10 else datetime.fromisoformat(value.strip())
        except ValueError:
            raise AsOfError(f"as of {value!r} is neither a date (YYYY-MM-DD) nor a timestamp (ISO 8601)") from None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time.max, UTC)
    raise AsOfError(f"as of {value!r} is not a date, datetime or text")


def held_as_of(market: Market, moment: datetime) -> sa.Subquery:
    """One market's reports known at `moment`, each with the version held then: the data table's columns but
    updated_at, then `version_recorded_at` and `backfilled`."""
    table, history = table_for(market), history_for(market)
    day = moment.astimezone(UTC).date()
    at = sa.bindparam("as_of", moment, type_=UtcDateTime())
    names = [c.name for c in table.columns if c.name != "updated_at"]
    current = sa.select(
        *(table.c[name] for name in names),
        table.c.updated_at.label("recorded_at"),
        sa.cast(sa.null(), UtcDateTime()).label("superseded_at"),
    ).where(table.c.published_on <= day, table.c.trade_date <= day)
    # Versions replaced within the transaction that recorded them were never visible to anyone.
    kept = history.c.superseded_at > history.c.recorded_at
    earlier = sa.select(*(history.c[name] for name in names), history.c.recorded_at, history.c.superseded_at).where(
        kept, history.c.published_on <= day, history.c.trade_date <= day
    )
    versions = sa.union_all(current, earlier).subquery("versions")
    # Each key's first version in history, joined by key, so a filter on code reaches it too.
    first = (
        sa.select(history.c.code, history.c.trade_date, sa.func.min(history.c.recorded_at).label("first_recorded"))
        .where(kept)
        .group_by(history.c.code, history.c.trade_date)
        .subquery("first")
    )
    held_then = sa.or_(
        sa.and_(
            versions.c.recorded_at <= at,
            sa.or_(versions.c.superseded_at.is_(None), versions.c.superseded_at > at),
        ),
        sa.and_(
            versions.c.recorded_at > at,
            sa.or_(first.c.first_recorded.is_(None), first.c.first_recorded >= versions.c.recorded_at),
        ),
    )
    joined = versions.outerjoin(
        first, sa.and_(first.c.code == versions.c.code, first.c.trade_date == versions.c.trade_date)
    )
    return (
        sa.select(
            *(versions.c[name] for name in names),
            versions.c.recorded_at.label(RECORDED_AT),
            (versions.c.recorded_at > at).label(BACKFILLED),
        )
        .select_from(joined)
        .where(held_then)
        .subquery("as_of")
    )
