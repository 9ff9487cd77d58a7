"""The trading-day cache gives every process the calendar exchange_calendars builds, without building it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from proto_client import publication
from proto_client.publication import CALENDAR_END, CALENDAR_START, trading_days
from proto_client.security import Market
from proto_client.session_cache import cache_file, read_sessions


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    trading_days.cache_clear()
    yield tmp_path
    trading_days.cache_clear()


def test_the_cached_sessions_are_the_built_ones_and_a_process_reads_them_without_the_library(
    cache_home: Path,
) -> None:
    built = {market: trading_days(market) for market in Market}
    for days in built.values():
        path = cache_file(days.exchange, CALENDAR_START, CALENDAR_END)
        assert path.parent == cache_home / "shortinterest"
        assert read_sessions(path) == days.sessions == publication._build_sessions(days.exchange)
    # A new process finds them: neither exchange_calendars nor pandas is imported to answer.
    probe = (
        "import sys; from proto_client.publication import publication_day, trading_days; "
        "from proto_client.security import Market; import datetime as d; "
        "print(publication_day(Market.US, d.date(2023, 11, 15)), len(trading_days(Market.HK).sessions), "
        "'exchange_calendars' in sys.modules, 'pandas' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env={"XDG_CACHE_HOME": str(cache_home)},
    ).stdout.split()
    assert out == ["2023-11-27", str(len(built[Market.HK].sessions)), "False", "False"]


def test_a_damaged_cache_is_rebuilt_and_an_unwritable_one_is_not_needed(
    cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = trading_days(Market.US).sessions
    path = cache_file("XNYS", CALENDAR_START, CALENDAR_END)
    for damage in ("", "not a number\n", "\n".join(str(d.toordinal()) for d in reversed(expected[:10]))):
        path.write_text(damage)
        trading_days.cache_clear()
        assert trading_days(Market.US).sessions == expected
        assert read_sessions(path) == expected, "the damaged file is replaced"

    # A cache home that cannot hold a directory (even for root): the sessions are built and used all the same.
    not_a_directory = cache_home / "a-file"
    not_a_directory.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(not_a_directory))
    trading_days.cache_clear()
    assert trading_days(Market.US).sessions == expected
