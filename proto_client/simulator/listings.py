"""What the demo gateway lists: whole markets with names, the Hang Seng Index's constituents, watchlist groups.

Every stock and ETF listed here has a short-interest history in the demo data (delisted ones too), so a
watchlist resolved from these lists loads. The groups hold what real ones do besides: a warrant, an index and
a Shanghai stock, which the short-interest API does not serve. `--groups-file` replaces the custom groups,
read again on every request, so a test can change a group between two resolutions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from proto_client.security import Market
from proto_client.simulator.demo_data import demo_codes, profile_for
from proto_client.simulator.market_codes import listed_codes, listed_index

SEC_STOCK, SEC_ETF, SEC_WARRANT, SEC_INDEX = 3, 4, 5, 6
GROUP_CUSTOM, GROUP_SYSTEM = 1, 2
EXCH_HK_MAINBOARD, EXCH_US_NYSE, EXCH_US_NASDAQ, EXCH_CN_SH = 1, 4, 5, 14
WARRANT_CALL = 1
HSI_PLATE = "HK.HSI Constituent"
DEFAULT_MARKET_SIZE = 2_000  # synthetic listed codes per market, besides the named ones
HSI_SIZE = 80
_DELISTED_EVERY, _DELISTED_AT = 40, 17
_ETF_EVERY = 10


class ListingError(LookupError):
    """A group, plate or code the gateway does not list; the message is the gateway's retMsg."""


@dataclass(frozen=True, slots=True)
class Listing:
    """One security's static information, as Qot_Common.SecurityStaticInfo carries it."""

    code: str  # "HK.00700"; "SH.600519" for the one security of another market
    name: str
    sec_type: int
    lot_size: int
    listed: date
    delisted: bool = False
    exch_type: int = 0
    owner: str | None = None  # a warrant's underlying stock
    warrant_type: int = 0

    @property
    def stock_id(self) -> int:
        digest = hashlib.blake2b(self.code.encode(), digest_size=6).digest()
        return int.from_bytes(digest, "big")


_NAMED = {
    "HK.00700": ("TENCENT", SEC_STOCK, 100),
    "HK.09988": ("BABA-W", SEC_STOCK, 100),
    "HK.00005": ("HSBC HOLDINGS", SEC_STOCK, 400),
    "HK.00939": ("CCB", SEC_STOCK, 1000),
    "HK.02800": ("TRACKER FUND", SEC_ETF, 500),
    "HK.03690": ("MEITUAN-W", SEC_STOCK, 100),
    "US.AAPL": ("Apple", SEC_STOCK, 1),
    "US.TSLA": ("Tesla", SEC_STOCK, 1),
    "US.SPY": ("SPDR S&P 500 ETF Trust", SEC_ETF, 1),
    "US.NVDA": ("NVIDIA", SEC_STOCK, 1),
    "US.MSFT": ("Microsoft", SEC_STOCK, 1),
    "US.QQQ": ("Invesco QQQ Trust", SEC_ETF, 1),
}
# In groups only: what a real watchlist holds that the short-interest API does not serve.
_UNSERVED = (
    Listing(
        "HK.13579",
        "TENCENT CALL WARRANT",
        SEC_WARRANT,
        10_000,
        date(2025, 3, 3),
        False,
        EXCH_HK_MAINBOARD,
        owner="HK.00700",
        warrant_type=WARRANT_CALL,
    ),
    Listing("HK.800000", "Hang Seng Index", SEC_INDEX, 0, date(1969, 11, 24)),
    Listing("SH.600519", "KWEICHOW MOUTAI", SEC_STOCK, 100, date(2001, 8, 27), False, EXCH_CN_SH),
)
_WORDS_A = ("Golden", "Pacific", "Harbour", "Summit", "Northern", "Jade", "Silver", "Eastern", "Pioneer", "Bright")
_WORDS_B = ("Dragon", "River", "Peak", "Ocean", "Lotus", "Bridge", "Crown", "Phoenix", "Cedar", "Star")
_WORDS_C = ("Holdings", "Group", "Technologies", "Industries", "Resources", "Bancorp", "Energy", "Health")


def _pick(words: tuple[str, ...], code: str, salt: str) -> str:
    digest = hashlib.blake2b(f"{code}|{salt}".encode(), digest_size=4).digest()
    return words[int.from_bytes(digest, "big") % len(words)]


def _synthetic(code: str, index: int) -> Listing:
    market = Market[code.partition(".")[0]]
    etf = index % _ETF_EVERY == _ETF_EVERY - 1
    suffix = "ETF" if etf else _pick(_WORDS_C, code, "c")
    name = f"{_pick(_WORDS_A, code, 'a')} {_pick(_WORDS_B, code, 'b')} {suffix} {code.partition('.')[2]}"
    hk = market is Market.HK
    return Listing(
        code,
        name.upper() if hk else name,
        SEC_ETF if etf else SEC_STOCK,
        (100, 200, 500, 1000)[index % 4] if hk else 1,
        profile_for(code).listed,
        delisted=index % _DELISTED_EVERY == _DELISTED_AT,
        exch_type=EXCH_HK_MAINBOARD if hk else (EXCH_US_NASDAQ if index % 2 else EXCH_US_NYSE),
    )


def _named(code: str) -> Listing:
    name, sec_type, lot = _NAMED[code]
    hk = code.startswith("HK.")
    exch = EXCH_HK_MAINBOARD if hk else (EXCH_US_NASDAQ if code in {"US.AAPL", "US.TSLA", "US.NVDA"} else EXCH_US_NYSE)
    return Listing(code, name, sec_type, lot, profile_for(code).listed, exch_type=exch)


def _extra(code: str) -> Listing:
    hk = code.startswith("HK.")
    return Listing(
        code,
        f"SYNTHETIC {code.partition('.')[2]}",
        SEC_STOCK,
        100 if hk else 1,
        profile_for(code).listed,
        exch_type=EXCH_HK_MAINBOARD if hk else EXCH_US_NASDAQ,
    )


class ListingBook:
    """The lists one gateway serves; `market_size` synthetic listed codes per market."""

    def __init__(
        self, market_size: int = DEFAULT_MARKET_SIZE, extra_codes: int = 0, groups_file: Path | None = None
    ) -> None:
        self.groups_file = groups_file
        self._by_code: dict[str, Listing] = {}
        self._markets: dict[Market, list[Listing]] = {}
        for market in Market:
            named = [_named(code) for code in _NAMED if code.startswith(market.prefix + ".")]
            synthetic = []
            for code in listed_codes(market, market_size):
                index = listed_index(code)
                assert index is not None
                synthetic.append(_synthetic(code, index))
            self._markets[market] = named + synthetic
        for listing in [*self._markets[Market.HK], *self._markets[Market.US], *_UNSERVED]:
            self._by_code[listing.code] = listing
        for code in demo_codes(extra_codes)[len(_NAMED) :]:
            self._by_code[code] = _extra(code)
        hk_stocks = [x for x in self._markets[Market.HK] if x.sec_type == SEC_STOCK and not x.delisted]
        self._hsi = sorted(hk_stocks[:HSI_SIZE], key=lambda x: x.code)

    @property
    def served_codes(self) -> frozenset[str]:
        """Every listed stock and ETF of HK and US: each has a short-interest history."""
        return frozenset(x.code for market in Market for x in self._markets[market])

    def market(self, qot_market: int, sec_type: int) -> list[Listing]:
        """A whole market's securities of one type; a market this gateway does not list has none."""
        for market in Market:
            if market.qot_market == qot_market:
                listed = self._markets[market]
                if sec_type == SEC_WARRANT and market is Market.HK:
                    listed = [_UNSERVED[0]]
                return [x for x in listed if x.sec_type == sec_type]
        return []

    def lookup(self, codes: Iterable[str]) -> list[Listing]:
        found = []
        for code in codes:
            listing = self._by_code.get(code)
            if listing is None:
                raise ListingError(f"unknown stock {code}")
            found.append(listing)
        return found

    def plate(self, code: str) -> list[Listing]:
        if code != HSI_PLATE:
            raise ListingError(f"unknown plate {code}")
        return list(self._hsi)

    def groups(self) -> list[tuple[str, int, list[str]]]:
        """(name, GroupType, codes) of every group: the custom ones, then the system ones built from them."""
        custom = self._custom_groups()
        everything = list(dict.fromkeys(code for _, codes in custom for code in codes))
        system = [
            ("All", everything),
            ("US", [c for c in everything if c.startswith("US.")]),
            ("HK", [c for c in everything if c.startswith("HK.")]),
        ]
        return [(name, GROUP_CUSTOM, codes) for name, codes in custom] + [
            (name, GROUP_SYSTEM, codes) for name, codes in system
        ]

    def group(self, name: str) -> list[Listing]:
        for group_name, _, codes in self.groups():
            if group_name == name:
                return self.lookup(codes)
        raise ListingError(f"unknown group {name!r}")

    def _custom_groups(self) -> list[tuple[str, list[str]]]:
        if self.groups_file is None:
            delisted = next(x.code for x in self._markets[Market.US] if x.delisted)
            return [
                ("Shorts", ["HK.00700", "US.TSLA", "HK.13579", delisted, "SH.600519"]),
                ("Tech", ["US.AAPL", "US.NVDA", "US.MSFT", "HK.09988", "HK.03690", "HK.800000"]),
            ]
        return read_groups_file(self.groups_file)


def read_groups_file(path: Path) -> list[tuple[str, list[str]]]:
    """`{"Group name": ["HK.00700", ...], ...}`; a file that cannot be read is every group request's error."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ListingError(f"groups file {path}: {exc}") from None
    if not isinstance(data, dict) or not all(
        isinstance(name, str) and isinstance(codes, list) and all(isinstance(c, str) for c in codes)
        for name, codes in data.items()
    ):
        raise ListingError(f"groups file {path}: expected an object of group name -> list of codes")
    return [(name, list(codes)) for name, codes in data.items()]
