"""The `securities` table: the resolved universe, written in one transaction, read by the sensor and `status`.

A security that leaves the watchlist (dropped from its group or index, excluded, delisted) keeps its row
with `in_watchlist` false and `left_at` set, as its short-interest rows are kept; one that comes back
joins again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from pipelines.crawl.crawler import CodeResult
from pipelines.universe.resolve import Member, Resolution
from pipelines.warehouse.engine import read_connection
from pipelines.warehouse.schema import securities

# A market holds many codes the sources publish nothing for; requests are scarce, so such a code is asked
# again after this long instead of on every weekly refresh.
RECHECK_EMPTY_AFTER = timedelta(days=30)
_UPDATED = ("name", "security_type", "lot_size", "listing_date", "delisted", "sources", "in_watchlist",
            "joined_at", "left_at", "resolved_at")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Moved:
    code: str
    name: str | None

    def __str__(self) -> str:
        return f"{self.code} {self.name}" if self.name else self.code


@dataclass(frozen=True, slots=True)
class UniverseChange:
    """What a resolution changes: who joins and who leaves the watchlist."""

    joined: tuple[Moved, ...]
    left: tuple[Moved, ...]
    watchlist: tuple[str, ...]  # the codes in the watchlist afterwards, in code order


def watchlist_codes(engine: sa.Engine) -> list[str]:
    """The codes the last resolution keeps in the watchlist, in code order."""
    query = sa.select(securities.c.code).where(securities.c.in_watchlist).order_by(securities.c.code)
    with read_connection(engine) as conn:
        return list(conn.execute(query).scalars())


def left_codes(engine: sa.Engine) -> list[tuple[str, str | None, datetime | None, bool]]:
    """(code, name, left_at, delisted) of every security that left the watchlist, in code order."""
    query = (
        sa.select(securities.c.code, securities.c.name, securities.c.left_at, securities.c.delisted)
        .where(sa.not_(securities.c.in_watchlist))
        .order_by(securities.c.code)
    )
    with read_connection(engine) as conn:
        return [(r.code, r.name, r.left_at, r.delisted) for r in conn.execute(query)]


def _values(member: Member, now: datetime) -> dict[str, object]:
    return {
        "name": member.name,
        "security_type": member.security_type,
        "lot_size": member.lot_size,
        "listing_date": member.listing_date,
        "delisted": member.delisted,
        "sources": list(member.sources),
        "in_watchlist": not member.delisted,
        "resolved_at": now,
    }


def apply_resolution(
    engine: sa.Engine, resolution: Resolution, *, now: datetime | None = None, dry_run: bool = False
) -> UniverseChange:
    """Write `resolution` to securities (unless `dry_run`) and say who joined and who left."""
    now = now or datetime.now(UTC)
    columns = (securities.c.code, securities.c.name, securities.c.in_watchlist, securities.c.joined_at,
               securities.c.left_at)  # fmt: skip
    with engine.begin() as conn:
        existing = {row.code: row for row in conn.execute(sa.select(*columns))}
        inserts: list[dict[str, object]] = []
        updates: list[dict[str, object]] = []
        joined: list[Moved] = []
        left: list[Moved] = []
        named = set()
        for member in resolution.members:
            named.add(member.code)
            values = _values(member, now)
            inside = not member.delisted
            before = existing.get(member.code)
            if before is None:
                inserts.append({"code": member.code, "market": member.code[:2], **values, "joined_at": now,
                                "left_at": None if inside else now})  # fmt: skip
                if inside:
                    joined.append(Moved(member.code, member.name))
                continue
            values["joined_at"] = now if inside and not before.in_watchlist else before.joined_at
            values["left_at"] = None if inside else (now if before.in_watchlist else before.left_at)
            if inside and not before.in_watchlist:
                joined.append(Moved(member.code, member.name))
            elif before.in_watchlist and not inside:
                left.append(Moved(member.code, member.name or before.name))
            updates.append({"b_code": member.code, **values})
        gone = [row for code, row in existing.items() if row.in_watchlist and code not in named]
        left.extend(Moved(row.code, row.name) for row in gone)
        if not dry_run:
            if inserts:
                conn.execute(sa.insert(securities), inserts)
            if updates:
                statement = (
                    sa.update(securities)
                    .where(securities.c.code == sa.bindparam("b_code"))
                    .values({name: sa.bindparam(name) for name in _UPDATED})
                )
                conn.execute(statement, updates)
            if gone:
                conn.execute(
                    sa.update(securities)
                    .where(securities.c.code.in_([row.code for row in gone]))
                    .values(in_watchlist=False, left_at=now)
                )
        else:
            conn.rollback()
    return UniverseChange(tuple(sorted(joined, key=_code)), tuple(sorted(left, key=_code)), resolution.codes)


def _code(moved: Moved) -> str:
    return moved.code


def resting_codes(engine: sa.Engine, codes: Sequence[str], now: datetime | None = None) -> set[str]:
    """Those of `codes` whose last crawl, within RECHECK_EMPTY_AFTER, found no history: not asked again yet."""
    since = (now or datetime.now(UTC)) - RECHECK_EMPTY_AFTER
    query = sa.select(securities.c.code).where(securities.c.empty_history_at > since)
    with read_connection(engine) as conn:
        return set(conn.execute(query).scalars()) & set(codes)


def empty_histories(engine: sa.Engine) -> dict[str, datetime]:
    """code -> when its last crawl found no history, for the codes whose last crawl did."""
    query = sa.select(securities.c.code, securities.c.empty_history_at).where(
        securities.c.empty_history_at.is_not(None)
    )
    with read_connection(engine) as conn:
        return {row.code: row.empty_history_at for row in conn.execute(query)}


def note_histories(engine: sa.Engine, results: Iterable[CodeResult], now: datetime | None = None) -> None:
    """Remember which crawls found no history at all (re-checked monthly), and forget it for those that found
    some. Codes outside the securities table (typed on the command line) are not touched."""
    empty = [r.code for r in results if r.ok and r.newest_trade_date is None]
    found = [r.code for r in results if r.ok and r.newest_trade_date is not None]
    with engine.begin() as conn:
        if empty:
            conn.execute(
                sa.update(securities)
                .where(securities.c.code.in_(empty))
                .values(empty_history_at=now or datetime.now(UTC))
            )
        if found:
            conn.execute(
                sa.update(securities)
                .where(securities.c.code.in_(found), securities.c.empty_history_at.is_not(None))
                .values(empty_history_at=None)
            )
