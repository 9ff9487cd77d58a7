"""The watchlist's sources beside `codes:`, validated when the YAML is read, each error naming its entry.

```yaml
futu_groups: [Shorts]              # watchlist groups of the account logged in to OpenD
plates: ["HK.HSI Constituent"]     # plate / index constituents, as get_plate_stock names them
markets: [HK]                      # every listed stock and ETF of the market
exclude: [HK.09988]
```
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

SOURCE_KEYS = ("futu_groups", "plates", "markets", "exclude")
MARKETS = ("HK", "US")
# Plates live in these markets; constituents outside HK and US are left out at resolution.
PLATE_MARKETS = ("HK", "US", "SH", "SZ")
PLATE_FORMAT = 'MARKET.PLATE, e.g. "HK.HSI Constituent" or "HK.BK1001"'


@dataclass(frozen=True, slots=True)
class WatchlistSources:
    """What the watchlist names besides its typed codes; all empty for a watchlist of codes only."""

    futu_groups: tuple[str, ...] = ()
    plates: tuple[str, ...] = ()
    markets: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @property
    def needs_gateway(self) -> bool:
        """Whether resolving asks OpenD (groups, plates or markets named)."""
        return bool(self.futu_groups or self.plates or self.markets)


def _names(key: str, value: object, problems: list[str], check: Callable[[int, str], str | None]) -> tuple[str, ...]:
    if value is None:
        problems.append(f"`{key}:` is empty; list entries or remove the key")
        return ()
    if not isinstance(value, list):
        problems.append(f"`{key}:` must be a list, found a {type(value).__name__}")
        return ()
    found: list[str] = []
    for number, entry in enumerate(value, start=1):
        if not isinstance(entry, str) or not entry.strip():
            problems.append(f"{key} entry {number} {entry!r}: expected a non-empty string")
            continue
        problem = check(number, entry)
        if problem:
            problems.append(f"{key} entry {number} {entry!r}: {problem}")
        elif entry not in found:
            found.append(entry)
    return tuple(found)


def _group(number: int, entry: str) -> str | None:
    del number
    return "has spaces around it; write the group's name exactly" if entry != entry.strip() else None


def _plate(number: int, entry: str) -> str | None:
    del number
    prefix, dot, rest = entry.partition(".")
    if not dot or not rest:
        return f"no market prefix; write it as {PLATE_FORMAT}"
    if prefix not in PLATE_MARKETS:
        return f"unknown market {prefix!r}; plates are {', '.join(PLATE_MARKETS)}: {PLATE_FORMAT}"
    return None


def _market(number: int, entry: str) -> str | None:
    del number
    return None if entry in MARKETS else f"unknown market; only {' and '.join(MARKETS)} are served"


def parse_sources(
    document: Mapping[object, object], read_codes: Callable[[list[object], str], tuple[list[str], list[str], list[str]]]
) -> tuple[WatchlistSources, list[str], list[str]]:
    """(sources, problems, notes) from the YAML mapping; `read_codes` reads the `exclude:` entries as codes."""
    problems: list[str] = []
    notes: list[str] = []
    groups = _names("futu_groups", document["futu_groups"], problems, _group) if "futu_groups" in document else ()
    plates = _names("plates", document["plates"], problems, _plate) if "plates" in document else ()
    markets = _names("markets", document["markets"], problems, _market) if "markets" in document else ()
    raw_exclude = document.get("exclude", [])
    exclude: list[str] = []
    if not isinstance(raw_exclude, list):
        problems.append(f"`exclude:` must be a list of codes, found {type(raw_exclude).__name__}")
    else:
        exclude, exclude_problems, notes = read_codes(raw_exclude, "exclude entry")
        problems.extend(exclude_problems)
    return WatchlistSources(groups, plates, markets, tuple(exclude)), problems, notes
