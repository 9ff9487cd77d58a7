"""The demo universe: deterministic, realistic short-interest history for a dozen HK and US codes.

Every value is a pure function of (code, trade date[, revision]) built from seeded hashing, so moving
the data cutoff (`as_of`) never changes an older row, and tests can import `rows_for` to know exactly
what the gateway serves. Magnitudes follow each security's real scale; a few counts exceed 2^31 on
purpose (HK.00939's aggregated short, US.AAPL's shares short) because the wire carries them as uint64.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import cache
from statistics import NormalDist
from typing import overload

from proto_client.publication import published_reports
from proto_client.records import HkShortInterestRow, UsShortInterestRow
from proto_client.security import Market, parse_code
from proto_client.simulator.market_codes import listed_index

# The earliest date either market's history reaches back to.
HISTORY_START = date(2012, 9, 1)
MAX_EXTRA_CODES = 10_000
REVISED_ROWS = 2  # a revision touches the newest rows only, as published corrections do

_EPOCH = date(2012, 1, 1)
_STANDARD_NORMAL = NormalDist()


@dataclass(frozen=True, slots=True)
class Profile:
    """The scale of one security: what its numbers look like, not the numbers themselves."""

    code: str
    listed: date  # no rows before the listing date
    shares: float  # shares (or fund units) outstanding
    price_start: float  # price level in 2012 (or at listing)
    price_end: float  # price level by 2026
    short_ratio: float  # typical short position, percent of shares
    daily_volume: float  # typical average daily share volume (US only)


_PROFILES: tuple[Profile, ...] = (
    Profile("HK.00700", date(2004, 6, 16), 9.2e9, 40.0, 480.0, 0.55, 0.0),
    Profile("HK.09988", date(2019, 11, 26), 19.1e9, 190.0, 130.0, 1.40, 0.0),
    Profile("HK.00005", date(1991, 1, 1), 17.8e9, 75.0, 95.0, 0.30, 0.0),
    Profile("HK.00939", date(2005, 10, 27), 240.4e9, 5.6, 7.4, 1.80, 0.0),
    Profile("HK.02800", date(1999, 11, 12), 13.5e9, 21.5, 25.0, 1.10, 0.0),
    Profile("HK.03690", date(2018, 9, 20), 6.1e9, 72.0, 105.0, 1.60, 0.0),
    Profile("US.AAPL", date(1980, 12, 12), 15.3e9, 22.0, 210.0, 15.80, 1.05e9),
    Profile("US.TSLA", date(2010, 6, 29), 3.2e9, 2.0, 330.0, 3.20, 1.1e8),
    Profile("US.SPY", date(1993, 1, 29), 9.3e8, 140.0, 600.0, 18.00, 7.5e7),
    Profile("US.NVDA", date(1999, 1, 22), 24.4e9, 0.35, 150.0, 1.10, 2.6e8),
    Profile("US.MSFT", date(1986, 3, 13), 7.4e9, 30.0, 450.0, 0.60, 2.4e7),
    Profile("US.QQQ", date(1999, 3, 10), 6.1e8, 65.0, 520.0, 14.00, 4.5e7),
)
_BY_CODE = {p.code: p for p in _PROFILES}


def _unit(*parts: object) -> float:
    """A uniform number in (0, 1) fixed by `parts`: seeded hashing, never process-global randomness."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 0.5) / 2**64


@cache
def _phase(code: str, cycle: str) -> float:
    """The phase of one of a code's cycles, the same for every row: hashed once per code, not once per row."""
    return _unit(code, f"phase-{cycle}")


def _normal(*parts: object) -> float:
    return _STANDARD_NORMAL.inv_cdf(_unit(*parts))


def _synthetic_code(index: int) -> str:
    """Even indexes are US tickers, odd ones HK codes, so both markets grow with `extra`."""
    half = index // 2 + 1
    return f"US.SYN{half:04d}" if index % 2 == 0 else f"HK.{89000 + half:05d}"


def _synthetic_profile(code: str) -> Profile:
    price = 2.0 + 200.0 * _unit(code, "price")
    return Profile(
        code=code,
        listed=date(2010, 1, 1),
        shares=10 ** (8.5 + 2.0 * _unit(code, "shares")),
        price_start=price,
        price_end=price * math.exp(0.6 * _normal(code, "drift")),
        short_ratio=0.2 + 6.0 * _unit(code, "short"),
        daily_volume=10 ** (5.5 + 2.0 * _unit(code, "volume")),
    )


def demo_codes(extra: int = 0) -> list[str]:
    """The codes the demo gateway knows: the named universe, then `extra` synthetic ones."""
    if not 0 <= extra <= MAX_EXTRA_CODES:
        raise ValueError(f"extra codes must be between 0 and {MAX_EXTRA_CODES}, got {extra}")
    return [p.code for p in _PROFILES] + [_synthetic_code(i) for i in range(extra)]


def profile_for(code: str) -> Profile:
    """The profile of a named, listed or synthetic code; KeyError names a code the universe does not hold."""
    if code in _BY_CODE:
        return _BY_CODE[code]
    if listed_index(code) is not None:
        return _synthetic_profile(code)
    security = parse_code(code)
    symbol = security.symbol
    if security.market is Market.US and symbol.startswith("SYN") and symbol[3:].isdigit():
        index = (int(symbol[3:]) - 1) * 2
    elif security.market is Market.HK and int(symbol) > 89000:
        index = (int(symbol) - 89001) * 2 + 1
    else:
        raise KeyError(code)
    if not 0 <= index < MAX_EXTRA_CODES or _synthetic_code(index) != code:
        raise KeyError(code)
    return _synthetic_profile(code)


def local_midnight(day: date, market: Market) -> int:
    """Unix seconds of midnight of `day` in the market's own time zone, as the gateway stamps rows."""
    return int(datetime.combine(day, time(0), tzinfo=market.tz).timestamp())


def _price(profile: Profile, day: date) -> float:
    """A smooth trend with business cycles and a little weekly noise, from 2012 level to 2026 level."""
    t = (day - _EPOCH).days / 365.25
    progress = min(max(t / 14.0, 0.0), 1.0)
    log_level = math.log(profile.price_start) + progress * math.log(profile.price_end / profile.price_start)
    cycles = 0.18 * math.sin(2 * math.pi * (t / 2.3 + _phase(profile.code, "a"))) + 0.07 * math.sin(
        2 * math.pi * (t / 0.4 + _phase(profile.code, "b"))
    )
    noise = 0.025 * _normal(profile.code, day, "close")
    return math.exp(log_level + cycles + noise)


def _round_price(value: float, market: Market) -> float:
    # HK quotes cheap stocks to the tenth of a cent; everything else trades in cents.
    return round(value, 3 if market is Market.HK and value < 10 else 2)


def _short_ratio(profile: Profile, day: date) -> float:
    t = (day - _EPOCH).days / 365.25
    swing = 0.30 * math.sin(2 * math.pi * (t / 1.6 + _phase(profile.code, "s")))
    return profile.short_ratio * math.exp(swing + 0.08 * _normal(profile.code, day, "short"))


def _revision_factor(code: str, day: date, revision: int) -> float:
    """A correction of 0.5 % to 4 % either way; never exactly 1 so a revision is always visible."""
    if revision == 0:
        return 1.0
    size = 0.005 + 0.035 * _unit(code, day, revision, "revision-size")
    return 1.0 + size if _unit(code, day, revision, "revision-sign") < 0.5 else 1.0 - size


def _hk_row(profile: Profile, day: date, revision: int) -> HkShortInterestRow:
    close = _round_price(_price(profile, day), Market.HK)
    last_close = _round_price(close * math.exp(0.012 * _normal(profile.code, day, "last")), Market.HK)
    factor = _revision_factor(profile.code, day, revision)
    aggregated = round(profile.shares * _short_ratio(profile, day) / 100 * factor)
    return HkShortInterestRow(
        code=profile.code,
        trade_date=day,
        timestamp=local_midnight(day, Market.HK),
        aggregated_short=aggregated,
        aggregated_short_ratio=round(aggregated / profile.shares * 100, 2),
        close_price=close,
        last_close_price=last_close,
    )


def _us_row(profile: Profile, day: date, revision: int) -> UsShortInterestRow:
    close = _round_price(_price(profile, day), Market.US)
    last_close = _round_price(close * math.exp(0.012 * _normal(profile.code, day, "last")), Market.US)
    factor = _revision_factor(profile.code, day, revision)
    shares_short = round(profile.shares * _short_ratio(profile, day) / 100 * factor)
    t = (day - _EPOCH).days / 365.25
    volume_swing = 0.25 * math.sin(2 * math.pi * (t / 1.1 + _phase(profile.code, "v")))
    volume = round(profile.daily_volume * math.exp(volume_swing + 0.12 * _normal(profile.code, day, "volume")))
    return UsShortInterestRow(
        code=profile.code,
        trade_date=day,
        timestamp=local_midnight(day, Market.US),
        shares_short=shares_short,
        short_percent=round(shares_short / profile.shares * 100, 2),
        avg_daily_share_volume=volume,
        days_to_cover=round(shares_short / volume, 2),
        close_price=close,
        last_close_price=last_close,
    )


def rows_for(code: str, as_of: date, revision: int = 0) -> list[UsShortInterestRow | HkShortInterestRow]:
    """Every row the gateway holds for `code` on the day `as_of`, newest first.

    As at the real sources, a report appears only from its publication day on: US figures 7 trading
    days after their settlement date, HK figures a week after their position date.

    With `revision` > 0 the newest REVISED_ROWS rows carry corrected counts (dates unchanged).
    Raises KeyError for a code outside the demo universe.
    """
    return list(History(code, as_of, revision))


class History(Sequence[UsShortInterestRow | HkShortInterestRow]):
    """The rows of `rows_for`, each built on first read: a gateway serving one page of a history builds that
    page, not the whole history (a weekly refresh reads one page per code).

    `reports` lists the published position dates (market, first day, as_of) oldest first; a gateway
    passes a memo of `published_reports`, which all synthetic codes share.
    """

    def __init__(
        self,
        code: str,
        as_of: date,
        revision: int = 0,
        *,
        reports: Callable[[Market, date, date], list[date]] = published_reports,
    ) -> None:
        if revision < 0:
            raise ValueError(f"revision must be 0 or more, got {revision}")
        self._profile = profile_for(code)
        market = parse_code(code).market
        self._make = _hk_row if market is Market.HK else _us_row
        self._revision = revision
        self._days = sorted(reports(market, max(HISTORY_START, self._profile.listed), as_of), reverse=True)
        self._rows: list[UsShortInterestRow | HkShortInterestRow | None] = [None] * len(self._days)

    def __len__(self) -> int:
        return len(self._days)

    @overload
    def __getitem__(self, index: int) -> UsShortInterestRow | HkShortInterestRow: ...

    @overload
    def __getitem__(self, index: slice) -> list[UsShortInterestRow | HkShortInterestRow]: ...

    def __getitem__(
        self, index: int | slice
    ) -> UsShortInterestRow | HkShortInterestRow | list[UsShortInterestRow | HkShortInterestRow]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        row = self._rows[index]  # IndexError out of range, as for a list
        if row is None:
            position = index % len(self)
            revision = self._revision if position < REVISED_ROWS else 0
            row = self._rows[position] = self._make(self._profile, self._days[position], revision)
        return row
