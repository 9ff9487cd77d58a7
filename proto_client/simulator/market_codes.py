"""The codes of the demo gateway's whole-market listings, beside the named dozen and `--extra-codes`.

A pure function of (market, index), so a code's short-interest history and its listing agree without either
module holding a table: HK lists 30000 upward, US lists four-letter tickers XAAA, XAAB, ... . Neither range
meets the named codes or the extra codes' SYN / 89xxx.
"""

from __future__ import annotations

import string

from proto_client.security import Market

MAX_LISTED = 10_000  # synthetic listed codes per market
_HK_FIRST = 30_000  # away from real stocks' 00001-09999, which tests use as codes the gateway does not know
_LETTERS = string.ascii_uppercase


def listed_code(market: Market, index: int) -> str:
    """The index-th synthetic listed code of `market` (0-based, below MAX_LISTED)."""
    if not 0 <= index < MAX_LISTED:
        raise ValueError(f"listed index must be from 0 to {MAX_LISTED - 1}, got {index}")
    if market is Market.HK:
        return f"HK.{_HK_FIRST + index}"
    a, rest = divmod(index, 26 * 26)
    b, c = divmod(rest, 26)
    return f"US.X{_LETTERS[a]}{_LETTERS[b]}{_LETTERS[c]}"


def listed_index(code: str) -> int | None:
    """The index of a synthetic listed code, None for any other code."""
    prefix, _, symbol = code.partition(".")
    if prefix == "HK" and len(symbol) == 5 and symbol.isdigit():
        index = int(symbol) - _HK_FIRST
        return index if 0 <= index < MAX_LISTED else None
    if prefix == "US" and len(symbol) == 4 and symbol[0] == "X" and all(ch in _LETTERS for ch in symbol[1:]):
        a, b, c = (_LETTERS.index(ch) for ch in symbol[1:])
        index = a * 26 * 26 + b * 26 + c
        return index if index < MAX_LISTED else None
    return None


def listed_codes(market: Market, count: int) -> list[str]:
    return [listed_code(market, i) for i in range(count)]
