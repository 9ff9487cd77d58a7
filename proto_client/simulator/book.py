"""What one gateway instance serves: the demo universe cut off at `as_of`, at one revision.

Without a fixed `as_of` the cutoff is today *in each market's own time zone*, as the real sources
publish: in the New York evening Hong Kong is already on the next day, and New York is not. Rows are
built on first read per code and day and kept for the life of the process, so a crawl of hundreds
of codes pays for each row once, and a refresh reading one page per code builds one page per code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime

from proto_client.publication import published_reports, trading_days
from proto_client.records import ShortInterestRow
from proto_client.security import Market
from proto_client.simulator.demo_data import History, demo_codes

# QotMarket values OpenD knows, named as its error messages name them.
QOT_MARKET_NAMES = {
    0: "Unknown",
    1: "HK",
    2: "HK_Future",
    11: "US",
    21: "CNSH",
    22: "CNSZ",
    31: "SG",
    41: "JP",
    51: "AU",
    61: "MY",
    71: "CA",
    81: "FX",
}


class SecurityLookupError(LookupError):
    """A security this API cannot answer for; the message is the gateway's retMsg."""


class DemoBook:
    def __init__(
        self,
        as_of: date | None,
        revision: int = 0,
        extra_codes: int = 0,
        *,
        listed: frozenset[str] = frozenset(),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.as_of = as_of
        self.clock = clock
        self.revision = revision
        self.codes = frozenset(demo_codes(extra_codes)) | listed
        self._rows: dict[tuple[str, date], History] = {}
        self._reports: dict[tuple[Market, date, date], list[date]] = {}
        for market in Market:
            # Build the exchange calendars before serving, not within the first request's reply time.
            trading_days(market)

    def code_of(self, qot_market: int, symbol: str) -> str:
        """`HK.00700` for (1, "00700"); markets the API refuses raise SecurityLookupError."""
        for market in Market:
            if market.qot_market == qot_market:
                return f"{market.prefix}.{symbol}"
        name = QOT_MARKET_NAMES.get(qot_market, str(qot_market))
        raise SecurityLookupError(f"unsupported market {name}: this API serves HK and US securities only")

    def rows(self, code: str) -> Sequence[ShortInterestRow]:
        if code not in self.codes:
            raise SecurityLookupError(f"unknown security {code}")
        as_of = self.as_of_for(Market[code.partition(".")[0]])
        cached = self._rows.get((code, as_of))
        if cached is None:
            cached = self._rows[(code, as_of)] = History(code, as_of, self.revision, reports=self._published)
        return cached

    def _published(self, market: Market, start: date, as_of: date) -> list[date]:
        key = (market, start, as_of)
        if key not in self._reports:
            self._reports[key] = published_reports(market, start, as_of)
        return self._reports[key]

    def as_of_for(self, market: Market) -> date:
        """The newest trade date served for `market`: the fixed cutoff, or today where the market is."""
        return self.as_of or self.clock().astimezone(market.tz).date()
