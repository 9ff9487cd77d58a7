"""The watchlist is validated in full before any request: every bad entry named, fixes said out loud."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pipelines.config import PACKAGED_WATCHLIST
from pipelines.crawl.watchlist import (
    MAX_ENTRIES,
    MAX_FILE_BYTES,
    Watchlist,
    WatchlistError,
    load_watchlist,
    parse_watchlist_text,
)
from proto_client.security import Market


def test_codes_keep_file_order_and_split_by_market() -> None:
    wl = parse_watchlist_text("codes:\n  - US.AAPL\n  - HK.00700\n  - US.SPY\n  - HK.02800\n")
    assert wl.codes == ("US.AAPL", "HK.00700", "US.SPY", "HK.02800")
    assert wl.for_market(Market.HK) == ("HK.00700", "HK.02800")
    assert wl.for_market(Market.US) == ("US.AAPL", "US.SPY")
    assert wl.notes == ()


def test_unambiguous_fixes_are_applied_and_reported(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    path = tmp_path / "wl.yaml"
    path.write_text("codes:\n  - us.aapl\n  - HK.700\n  - hk.0000005\n  - US.brk.b\n")
    with caplog.at_level(logging.WARNING, logger="pipelines.crawl.watchlist"):
        wl = load_watchlist(path)
    assert wl.codes == ("US.AAPL", "HK.00700", "HK.00005", "US.BRK.B")
    assert any("'us.aapl' read as US.AAPL" in n for n in wl.notes)
    assert any("'HK.700' read as HK.00700" in n for n in wl.notes)
    assert "'HK.700' read as HK.00700" in caplog.text
    assert str(path) in caplog.text


def test_duplicates_collapse_with_a_note() -> None:
    wl = parse_watchlist_text("codes: [US.AAPL, HK.00700, us.aapl, HK.700, US.AAPL]")
    assert wl.codes == ("US.AAPL", "HK.00700")
    assert sum("repeats entry 1" in n for n in wl.notes) == 2
    assert any("repeats entry 2" in n for n in wl.notes)


def test_every_bad_entry_is_named_in_one_error() -> None:
    text = """
codes:
  - US.AAPL
  - AAPL
  - SH.600519
  - XX.FOO
  - HK.ABCDE
  - 700
  - {US.MSFT: 1}
  - [US.TSLA]
  - "US.AAPL; DROP TABLE x"
  - "US.$(reboot)"
  - "US.AA PL"
  - ""
  - null
  - true
  - HK.1234567
"""
    with pytest.raises(WatchlistError) as info:
        parse_watchlist_text(text, "my.yaml")
    err = info.value
    assert err.source == "my.yaml"
    assert len(err.problems) == 14
    message = str(err)
    assert "my.yaml" in message
    for expected in (
        "entry 2 'AAPL': has no market prefix",
        "entry 3 'SH.600519': market SH is not supported",
        "entry 4 'XX.FOO': unknown market 'XX'",
        "entry 5 'HK.ABCDE': HK codes are 1 to 5 digits, zero-padded to five",
        "entry 6 700: is a number",
        "entry 7 {'US.MSFT': 1}: is a mapping",
        "entry 8 ['US.TSLA']: is a list",
        "entry 9 'US.AAPL; DROP TABLE x': contains whitespace",
        "entry 10 'US.$(reboot)': contains characters that are not part of any code",
        "entry 11 'US.AA PL': contains whitespace",
        "entry 12 '': is blank",
        "entry 13 None: is empty",
        "entry 14 True: is a true/false value",
        "entry 15 'HK.1234567': HK codes are 1 to 5 digits, zero-padded to five",
    ):
        assert expected in message, expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "found an empty file"),
        ("- US.AAPL\n", "expected a mapping with a `codes:` list, found a list"),
        ("code:\n  - US.AAPL\n", "unknown key 'code' (a watchlist takes `codes:`, `futu_groups:`"),
        ("{}\n", "missing the `codes:` key, and no `futu_groups:`, `plates:` or `markets:`"),
        ("codes:\n", "`codes:` must be a list of codes, found nothing"),
        ("codes: US.AAPL\n", "`codes:` must be a list of codes, found a str"),
        ("codes: []\n", "lists no codes"),
        ("codes: [US.AAPL\n", "not valid YAML at line 2"),
        ("codes: !!python/object:os.system [x]\n", "not valid YAML"),
    ],
)
def test_malformed_documents_are_refused_clearly(text: str, fragment: str) -> None:
    with pytest.raises(WatchlistError, match=r"watchlist src\.yaml") as info:
        parse_watchlist_text(text, "src.yaml")
    assert fragment in str(info.value)


def test_missing_file_names_the_path_and_the_variable(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(WatchlistError) as info:
        load_watchlist(path)
    assert str(path) in str(info.value)
    assert "SHORTINTEREST_WATCHLIST" in str(info.value)


def test_directory_and_non_utf8_are_refused(tmp_path: Path) -> None:
    with pytest.raises(WatchlistError, match="is a directory"):
        load_watchlist(tmp_path)
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"codes:\n  - US.\xe9\n")
    with pytest.raises(WatchlistError, match="not UTF-8"):
        load_watchlist(path)


def test_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("codes:\n" + "# padding\n" * (MAX_FILE_BYTES // 10 + 1) + "  - US.AAPL\n")
    with pytest.raises(WatchlistError, match="limit is 1048576"):
        load_watchlist(path)


def test_too_many_entries_are_refused() -> None:
    text = "codes:\n" + "".join(f"  - HK.{i:05d}\n" for i in range(MAX_ENTRIES + 1))
    with pytest.raises(WatchlistError, match=f"has {MAX_ENTRIES + 1} entries; the limit is {MAX_ENTRIES}"):
        parse_watchlist_text(text)


def test_unknown_top_level_keys_are_refused_by_name() -> None:
    with pytest.raises(WatchlistError, match="unknown key 'futu_group'"):
        parse_watchlist_text("futu_group: [Shorts]\ncodes: [US.AAPL]\n")


def test_shipped_watchlist_is_valid_and_covers_both_markets() -> None:
    wl = load_watchlist(PACKAGED_WATCHLIST)
    assert isinstance(wl, Watchlist)
    assert wl.notes == ()
    assert wl.for_market(Market.HK) and wl.for_market(Market.US)
