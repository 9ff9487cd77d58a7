"""Resolve a watchlist's sources against OpenD: typed codes, watchlist groups, plates and whole markets.

A handful of requests whatever the size: one for the group list and one per group, one per plate, two per
market (stocks, then ETFs), and one per 400 typed codes for their names. Only what the short-interest API
serves is taken (stocks and ETFs of HK and US); the rest (warrants, options, indexes, other markets) is left
out and named once. A delisted security stays a member, flagged, so its rows are kept but not refreshed.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from datetime import date

from pipelines.crawl.watchlist import Watchlist
from pipelines.universe.errors import GatewayResolutionError, ShrinkRefusedError, UnknownGroupError, UnknownPlateError
from pipelines.universe.sources import PLATE_FORMAT
from proto_client.client import OpenDClient
from proto_client.errors import InvalidCodeError, OpenDError, RequestError
from proto_client.security import parse_code
from proto_client.static_info import QOT_MARKETS, SECURITY_TYPE_NUMBERS, StaticInfo

log = logging.getLogger(__name__)

SERVED_TYPES = ("STOCK", "ETF")
NAMES_PER_REQUEST = 400
GROUP_ALL = 3


@dataclass(frozen=True, slots=True)
class Member:
    """One security of the resolved universe."""

    code: str
    name: str | None = None
    security_type: str | None = None  # STOCK or ETF; None for a typed code the gateway did not describe
    lot_size: int | None = None
    listing_date: date | None = None
    delisted: bool = False
    sources: tuple[str, ...] = ()  # "codes", "group:Shorts", "plate:HK.HSI Constituent", "market:HK"


@dataclass(frozen=True, slots=True)
class Resolution:
    members: tuple[Member, ...]  # in code order, excluded codes removed
    left_out: tuple[str, ...] = ()  # what the sources named that the API does not serve, one line each
    excluded: tuple[str, ...] = ()
    requests: int = 0
    notes: tuple[str, ...] = field(default=())

    @property
    def codes(self) -> tuple[str, ...]:
        """What loads: every member but the delisted."""
        return tuple(m.code for m in self.members if not m.delisted)


def _listing_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _member(info: StaticInfo, source: str) -> Member:
    return Member(
        code=info.code,
        name=info.name or None,
        security_type=info.type_name,
        lot_size=info.lot_size,
        listing_date=_listing_date(info.list_time),
        delisted=bool(info.delisting),
        sources=(source,),
    )


class _Collector:
    def __init__(self) -> None:
        self.members: dict[str, Member] = {}
        self.left_out: dict[str, str] = {}

    def add(self, infos: Iterable[StaticInfo], source: str) -> None:
        for info in infos:
            if info.market not in ("HK", "US") or info.type_name not in SERVED_TYPES or not _parses(info.code):
                self.left_out.setdefault(info.code, f"{info.code} {info.name} ({info.type_name}, from {source})")
                continue
            self.merge(_member(info, source))

    def merge(self, member: Member) -> None:
        known = self.members.get(member.code)
        if known is None:
            self.members[member.code] = member
            return
        sources = known.sources + tuple(s for s in member.sources if s not in known.sources)
        richer = known if known.name is not None else replace(member, sources=known.sources)
        self.members[member.code] = replace(richer, sources=sources)


def _parses(code: str) -> bool:
    try:
        parse_code(code)
    except InvalidCodeError:
        return False
    return True


def resolve(client: OpenDClient, watchlist: Watchlist) -> Resolution:
    """The union of the watchlist's sources minus `exclude:`; raises a ResolutionError, changing nothing."""
    sources = watchlist.sources
    gateway = client.endpoint
    collector = _Collector()
    notes: list[str] = []
    before = client.listing_requests_sent
    try:
        if watchlist.codes:
            described = _describe(client, watchlist.codes, notes)
            for code in watchlist.codes:
                info = described.get(code)
                collector.merge(_member(info, "codes") if info is not None else Member(code, sources=("codes",)))
        if sources.futu_groups:
            existing = [g.name for g in client.get_watchlist_groups(GROUP_ALL)]
            for group in sources.futu_groups:
                if group not in existing:
                    raise UnknownGroupError(group, gateway, existing)
                collector.add(client.get_watchlist(group), f"group:{group}")
        for plate in sources.plates:
            prefix, _, symbol = plate.partition(".")
            try:
                infos = client.get_plate_securities(QOT_MARKETS[prefix], symbol)
            except RequestError as exc:
                if exc.is_rate_limited or exc.is_quote_login_down:
                    raise
                raise UnknownPlateError(plate, gateway, exc.ret_msg, PLATE_FORMAT) from exc
            collector.add(infos, f"plate:{plate}")
        for market in sources.markets:
            for sec_type in SERVED_TYPES:
                collector.add(
                    client.get_static_info(QOT_MARKETS[market], SECURITY_TYPE_NUMBERS[sec_type]), f"market:{market}"
                )
    except OpenDError as exc:
        raise GatewayResolutionError(
            f"cannot resolve the watchlist {watchlist.source} from OpenD at {gateway}: {exc}; "
            "the last resolution stays in force"
        ) from exc
    excluded = tuple(code for code in sources.exclude if collector.members.pop(code, None) is not None)
    members = tuple(sorted(collector.members.values(), key=lambda m: m.code))
    left_out = tuple(collector.left_out[code] for code in sorted(collector.left_out))
    if left_out:
        log.info(
            "watchlist %s: %d securities left out (not served by the short-interest API): %s",
            watchlist.source,
            len(left_out),
            "; ".join(left_out),
        )
    return Resolution(members, left_out, excluded, client.listing_requests_sent - before, tuple(notes))


def _describe(client: OpenDClient, codes: tuple[str, ...], notes: list[str]) -> dict[str, StaticInfo]:
    """Names of typed codes; a batch the gateway refuses (a code it does not know) stays unnamed, noted."""
    found: dict[str, StaticInfo] = {}
    for start in range(0, len(codes), NAMES_PER_REQUEST):
        batch = codes[start : start + NAMES_PER_REQUEST]
        securities = [(parse_code(c).market.qot_market, parse_code(c).symbol) for c in batch]
        try:
            infos = client.get_static_info(0, 0, securities)
        except RequestError as exc:
            if exc.is_rate_limited or exc.is_quote_login_down:
                raise
            notes.append(f"names of {len(batch)} typed codes not read: {exc.ret_msg}")
            continue
        found.update((info.code, info) for info in infos)
    return found


def check_shrink(current: Collection[str], resolved: Collection[str], *, allow_shrink: bool) -> None:
    """Refuse a resolution that drops more than half of the current watchlist, unless allowed."""
    leaving = sorted(set(current) - set(resolved))
    if not allow_shrink and current and len(leaving) * 2 > len(current):
        raise ShrinkRefusedError(len(leaving), len(current), leaving[:5])
