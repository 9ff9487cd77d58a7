"""Typed short-interest rows: the boundary between the wire and everything downstream."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from proto_client.security import Market

END_OF_DATA = "-1"


def trade_date_of(timestamp: int, market: Market) -> date:
    """The trading day a row belongs to.

    The gateway stamps rows at midnight *in the market's time zone*; converting through UTC would put
    every HK row on the previous day.
    """
    return datetime.fromtimestamp(timestamp, market.tz).date()


@dataclass(frozen=True, slots=True)
class UsShortInterestRow:
    """One FINRA short-interest report (settlement date) for a US security."""

    code: str
    trade_date: date
    timestamp: int
    shares_short: int | None
    short_percent: float | None  # the number before the % sign: 12.34 means 12.34 %
    avg_daily_share_volume: int | None
    days_to_cover: float | None
    close_price: float | None
    last_close_price: float | None

    market = Market.US


@dataclass(frozen=True, slots=True)
class HkShortInterestRow:
    """One SFC weekly aggregated reportable short position for an HK security."""

    code: str
    trade_date: date
    timestamp: int
    aggregated_short: int | None
    aggregated_short_ratio: float | None  # the number before the % sign
    close_price: float | None
    last_close_price: float | None

    market = Market.HK


ShortInterestRow = UsShortInterestRow | HkShortInterestRow


@dataclass(frozen=True, slots=True)
class Page:
    """One reply of Qot_GetShortInterest: rows newest first, and the key of the next (older) page."""

    code: str
    rows: tuple[ShortInterestRow, ...]
    next_key: str

    @property
    def is_last(self) -> bool:
        return self.next_key == END_OF_DATA or not self.rows
