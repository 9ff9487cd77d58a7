"""The watchlist: which codes to crawl, validated in full before a single request is made.

A typo in a scheduled job's watchlist should fail loudly and all at once, naming every bad entry,
instead of burning rate-limited requests on the good ones and failing the bad ones one by one. Fixes
that can only mean one thing (`us.aapl`, `HK.700`) are applied, but said out loud, so the file can be
corrected and nobody wonders why a code in the warehouse differs from the one typed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipelines.universe.sources import SOURCE_KEYS, WatchlistSources, parse_sources
from proto_client.errors import InvalidCodeError
from proto_client.security import Market, parse_code

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 1024 * 1024
MAX_ENTRIES = 10_000
WATCHLIST_KEYS = ("codes", *SOURCE_KEYS)

# Letters, digits, the market dot and a class-suffix dash: anything else (quotes, semicolons, `$`,
# slashes, ...) is not a code however it is cased, so it is refused rather than "normalized".
_PLAIN_CODE = re.compile(r"[A-Za-z0-9.\-]+")


# How YAML's non-string values read in an error message.
_KINDS: dict[type, str] = {
    dict: "a mapping",
    list: "a list",
    int: "a number",
    float: "a number",
    bool: "a true/false value",
    type(None): "empty",
}


class WatchlistError(ValueError):
    """The watchlist cannot be used; `problems` lists every reason, each naming the bad entry."""

    def __init__(self, source: str, problems: list[str] | tuple[str, ...]) -> None:
        self.source = source
        self.problems = tuple(problems)
        if len(self.problems) == 1:
            message = f"watchlist {source}: {self.problems[0]}"
        else:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            message = f"watchlist {source}: {len(self.problems)} problems:\n{lines}"
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Watchlist:
    """Validated, normalized, de-duplicated codes in file order, and the sources to resolve besides them.

    With `sources.needs_gateway` the codes are only the typed part: pipelines.universe resolves the rest.
    """

    codes: tuple[str, ...]
    source: str = "<memory>"
    notes: tuple[str, ...] = ()
    sources: WatchlistSources = field(default_factory=WatchlistSources)

    def for_market(self, market: Market) -> tuple[str, ...]:
        return tuple(code for code in self.codes if parse_code(code).market is market)

    def __len__(self) -> int:
        return len(self.codes)

    def __iter__(self) -> Iterator[str]:
        return iter(self.codes)


def load_watchlist(path: str | Path) -> Watchlist:
    """Read and validate the YAML watchlist at `path`; normalizations are logged as warnings."""
    path = Path(path)
    source = str(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise WatchlistError(source, ["file not found (set SHORTINTEREST_WATCHLIST to the watchlist's path)"]) from None
    except OSError as exc:
        raise WatchlistError(source, [f"cannot read: {exc.strerror or exc}"]) from None
    if path.is_dir():
        raise WatchlistError(source, ["is a directory, not a YAML file"])
    if size > MAX_FILE_BYTES:
        raise WatchlistError(source, [f"file is {size} bytes; the limit is {MAX_FILE_BYTES} (1 MiB)"])
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise WatchlistError(source, [f"cannot read: {exc.strerror or exc}"]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise WatchlistError(source, [f"file is larger than the limit of {MAX_FILE_BYTES} bytes (1 MiB)"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WatchlistError(source, [f"not UTF-8 text (byte {exc.start})"]) from None
    watchlist = parse_watchlist_text(text, source)
    for note in watchlist.notes:
        log.warning("watchlist %s: %s", source, note)
    return watchlist


def parse_watchlist_text(text: str, source: str = "<text>") -> Watchlist:
    """Validate watchlist YAML given as text; `source` names it in errors and notes."""
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        raise WatchlistError(source, [f"larger than the limit of {MAX_FILE_BYTES} bytes (1 MiB)"])
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise WatchlistError(source, [f"not valid YAML{where}: {problem}"]) from None
    if not isinstance(document, dict):
        found = "an empty file" if document is None else f"a {type(document).__name__}"
        raise WatchlistError(source, [f"expected a mapping with a `codes:` list, found {found}"])
    unknown = [k for k in document if k not in WATCHLIST_KEYS]
    if unknown:
        known = ", ".join(f"`{k}:`" for k in WATCHLIST_KEYS)
        raise WatchlistError(source, [f"unknown key {k!r} (a watchlist takes {known})" for k in unknown])
    sources, problems, notes = parse_sources(document, read_codes)
    if problems:
        raise WatchlistError(source, problems)
    if "codes" not in document:
        if sources.needs_gateway:
            return Watchlist((), source, tuple(notes), sources)
        raise WatchlistError(source, ["missing the `codes:` key, and no `futu_groups:`, `plates:` or `markets:`"])
    entries = document["codes"]
    if not isinstance(entries, list):
        found = "nothing" if entries is None else f"a {type(entries).__name__}"
        raise WatchlistError(source, [f"`codes:` must be a list of codes, found {found}"])
    if not entries:
        if sources.needs_gateway:
            return Watchlist((), source, tuple(notes), sources)
        raise WatchlistError(source, ["`codes:` lists no codes"])
    if len(entries) > MAX_ENTRIES:
        raise WatchlistError(source, [f"`codes:` has {len(entries)} entries; the limit is {MAX_ENTRIES}"])
    typed = watchlist_from_entries(entries, source, notes=notes)
    return Watchlist(typed.codes, source, typed.notes, sources)


def watchlist_from_entries(entries: Sequence[object], source: str, *, notes: Sequence[str] = ()) -> Watchlist:
    """Validate codes given directly (e.g. on the command line) exactly as a watchlist file's entries."""
    if len(entries) > MAX_ENTRIES:
        raise WatchlistError(source, [f"{len(entries)} codes; the limit is {MAX_ENTRIES}"])
    codes, problems, read_notes = read_codes(entries)
    all_notes = [*notes, *read_notes]
    if problems:
        raise WatchlistError(source, problems)
    if not codes:
        raise WatchlistError(source, ["no codes given"])
    return Watchlist(tuple(codes), source, tuple(all_notes))


def read_codes(entries: Sequence[object], label: str = "entry") -> tuple[list[str], list[str], list[str]]:
    """(codes, problems, notes) of code entries, each problem or note naming `label` and the entry's number."""
    problems: list[str] = []
    notes: list[str] = []
    codes: list[str] = []
    first_seen: dict[str, int] = {}
    for number, entry in enumerate(entries, start=1):
        try:
            code, note = normalize_entry(entry)
        except InvalidCodeError as exc:
            problems.append(f"{label} {number} {entry!r}: {exc.reason}")
            continue
        if note:
            notes.append(f"{label} {number}: {note}")
        if code in first_seen:
            notes.append(f"{label} {number}: {code} repeats {label} {first_seen[code]}; loaded once")
            continue
        first_seen[code] = number
        codes.append(code)
    return codes, problems, notes


def normalize_entry(entry: object) -> tuple[str, str | None]:
    """One entry as a canonical code, plus a note when it had to be rewritten.

    Raises InvalidCodeError naming the entry when it is not a code, or not unambiguously one.
    """
    if isinstance(entry, bool) or not isinstance(entry, str):
        kind = _KINDS.get(type(entry), f"a {type(entry).__name__}")
        raise InvalidCodeError(entry, f"is {kind}, not a code like US.AAPL or HK.00700 (quote it if needed)")
    text = entry.strip()
    if not text:
        raise InvalidCodeError(entry, "is blank")
    if any(ch.isspace() for ch in text):
        raise InvalidCodeError(entry, "contains whitespace")
    if not _PLAIN_CODE.fullmatch(text):
        raise InvalidCodeError(entry, "contains characters that are not part of any code")
    prefix, dot, symbol = text.partition(".")
    if not dot or not prefix or not symbol:
        raise InvalidCodeError(entry, "has no market prefix; write it as US.AAPL or HK.00700")
    prefix, symbol = prefix.upper(), symbol.upper()
    if prefix == "HK" and symbol.isdigit() and len(symbol.lstrip("0")) <= 5:
        symbol = symbol.lstrip("0").zfill(5)
    candidate = f"{prefix}.{symbol}"
    code = parse_code(candidate).code
    note = None if code == entry else f"{entry!r} read as {code}"
    return code, note
