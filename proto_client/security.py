"""Security codes as the product writes them (`US.AAPL`, `HK.00700`) and as the wire carries them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from zoneinfo import ZoneInfo

from proto_client.errors import InvalidCodeError


class Market(Enum):
    """Markets this API serves, with their QotMarket wire value and local time zone."""

    HK = ("HK", 1, "Asia/Hong_Kong")
    US = ("US", 11, "America/New_York")

    def __init__(self, prefix: str, qot_market: int, tz_name: str) -> None:
        self.prefix = prefix
        self.qot_market = qot_market
        self.tz_name = tz_name

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.tz_name)

    @classmethod
    def from_qot_market(cls, value: int) -> Market:
        for market in cls:
            if market.qot_market == value:
                return market
        raise ValueError(f"unsupported QotMarket {value}")


# Markets OpenD knows but this API refuses; named so the error says "unsupported", not "malformed".
KNOWN_UNSUPPORTED_MARKETS = frozenset({"SH", "SZ", "SG", "JP", "MY", "AU", "CA", "FX"})

_HK_SYMBOL = re.compile(r"\d{5}")
# The one wording of the HK rule: inputs (watchlist, command line) pad short numbers, the wire form is padded.
HK_CODE_RULE = "HK codes are 1 to 5 digits, zero-padded to five (HK.700 is HK.00700)"
# US tickers: letters, optionally a class suffix (BRK.B) or a dash; at most 10 characters.
_US_SYMBOL = re.compile(r"[A-Z][A-Z0-9]{0,9}(?:[.-][A-Z0-9]{1,4})?")


@dataclass(frozen=True, slots=True)
class Security:
    market: Market
    symbol: str

    @property
    def code(self) -> str:
        return f"{self.market.prefix}.{self.symbol}"

    def __str__(self) -> str:
        return self.code


def parse_code(code: object) -> Security:
    """Parse `US.AAPL` / `HK.00700` exactly; anything else raises InvalidCodeError naming the code."""
    if not isinstance(code, str):
        raise InvalidCodeError(code, f"expected a string, got {type(code).__name__}")
    if code != code.strip() or any(ch.isspace() for ch in code):
        raise InvalidCodeError(code, "contains whitespace")
    if not code.isascii() or not code.isprintable():
        raise InvalidCodeError(code, "contains non-ASCII or control characters")
    prefix, dot, symbol = code.partition(".")
    if not dot or not prefix:
        raise InvalidCodeError(code, "no market prefix; write it as US.AAPL or HK.00700")
    if not symbol:
        raise InvalidCodeError(code, f"no symbol after the market prefix {prefix}.")
    if prefix != prefix.upper() and prefix.upper() in {*Market.__members__, *KNOWN_UNSUPPORTED_MARKETS}:
        raise InvalidCodeError(code, f"market prefix {prefix!r} must be upper case: {prefix.upper()}")
    if prefix in KNOWN_UNSUPPORTED_MARKETS:
        raise InvalidCodeError(code, f"market {prefix} is not supported; only HK and US are")
    try:
        market = Market[prefix]
    except KeyError:
        raise InvalidCodeError(code, f"unknown market {prefix!r}; only HK and US are supported") from None
    if market is Market.HK and not _HK_SYMBOL.fullmatch(symbol):
        padded = f": write HK.{symbol.zfill(5)}" if symbol.isdigit() and len(symbol) < 5 else ""
        raise InvalidCodeError(code, HK_CODE_RULE + padded)
    if market is Market.US and not _US_SYMBOL.fullmatch(symbol):
        raise InvalidCodeError(code, "US codes are an upper-case ticker, e.g. US.AAPL or US.BRK.B")
    return Security(market, symbol)
