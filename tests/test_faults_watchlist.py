"""A hostile or broken watchlist is refused before a single request, naming every bad entry, tables untouched."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
import yaml

from pipelines.warehouse import create_engine_for, upsert_rows
from proto_client.simulator.demo_data import rows_for
from tests.support.gateway import GatewayProcess, RawOpenD
from tests.support.loader import LoadResult, loader_env, migrate, requests_served, run_load
from tests.support.warehouse_check import assert_warehouse_matches_gateway, read_crawl_state

# Every test here waits seconds on loads, gateways, outages, services or Dagster runs: outside the inner loop.
pytestmark = pytest.mark.slow

AS_OF = date(2013, 3, 1)
SEEDED = ("HK.00700", "US.AAPL")
EXIT_USAGE = 2
MAX_PEAK_RSS = 500 * 1024 * 1024


def _hostile_strings(canary: Path) -> list[str]:
    return [
        "US.AAPL'; DROP TABLE us_short_interest;--",
        "US.AAPL';DROP/**/TABLE/**/us_short_interest;--",
        "$(rm -rf /)",
        f"$(touch {canary})",
        f"`touch {canary}`",
        "HK.00700|cat",
        "HK.00700;id",
        "SH.600000",
        "XX.1",
        "../../etc/passwd",
        "",
    ]


def _non_strings() -> list[object]:
    return [42, 1.5, True, None, {"code": "US.AAPL"}, ["US.AAPL"]]


def _seed(database_url: str) -> None:
    """Rows already in the warehouse, which a refused load must leave exactly as they are."""
    migrate(database_url)
    engine = create_engine_for(database_url)
    try:
        with engine.begin() as conn:
            for code in SEEDED:
                upsert_rows(conn, rows_for(code, AS_OF))
    finally:
        engine.dispose()


def _assert_refused_untouched(
    result: LoadResult, bad: list[object], database_url: str, stats_file: Path, gw: GatewayProcess
) -> None:
    assert result.returncode == EXIT_USAGE, result.output
    assert "nothing was loaded" in result.stderr, result.output
    for entry in bad:
        assert repr(entry) in result.stderr, f"bad entry {entry!r} is not named:\n{result.output}"
    assert requests_served(stats_file) == 0, "a request was sent although the watchlist was refused"
    assert_warehouse_matches_gateway(database_url, SEEDED, AS_OF)
    for code in ("HK.00700", "US.AAPL"):
        assert read_crawl_state(database_url, code) is None, f"{code}: crawl_state written by a refused load"
    # The counter the assertion above relies on does count: one request now shows as one.
    with RawOpenD(gw.host, gw.port) as peer:
        peer.init_connect()
        assert peer.short_interest("HK.00700").retType == 0
    assert requests_served(stats_file) == 1


@pytest.fixture
def stats_file(tmp_path: Path) -> Path:
    return tmp_path / "stats.json"


@pytest.fixture
def demo_gateway(gateway_factory: Callable[..., GatewayProcess], stats_file: Path) -> GatewayProcess:
    return gateway_factory("--rate", "off", "--as-of", AS_OF.isoformat(), "--stats-file", str(stats_file))


def test_hostile_watchlist_file_is_refused_before_any_request(
    demo_gateway: GatewayProcess, postgres_url: str, stats_file: Path, tmp_path: Path
) -> None:
    _seed(postgres_url)
    canary = tmp_path / "canary"
    bad: list[object] = [*_hostile_strings(canary), *_non_strings()]
    watchlist = tmp_path / "watchlist.yaml"
    watchlist.write_text(yaml.safe_dump({"codes": ["HK.00700", *bad, "US.AAPL"]}), encoding="utf-8")

    result = run_load(loader_env(demo_gateway, postgres_url, watchlist=watchlist), tmp_path, timeout=60)

    assert f"{len(bad)} problems" in result.stderr, result.output
    _assert_refused_untouched(result, bad, postgres_url, stats_file, demo_gateway)
    assert not canary.exists(), "a watchlist entry was run by a shell"


def test_hostile_codes_on_the_command_line_are_refused_before_any_request(
    demo_gateway: GatewayProcess, postgres_url: str, stats_file: Path, tmp_path: Path
) -> None:
    _seed(postgres_url)
    canary = tmp_path / "canary"
    bad: list[object] = list(_hostile_strings(canary))

    result = run_load(loader_env(demo_gateway, postgres_url), tmp_path, "US.AAPL", *map(str, bad), timeout=60)

    _assert_refused_untouched(result, bad, postgres_url, stats_file, demo_gateway)
    assert not canary.exists(), "a code from the command line was run by a shell"


def test_huge_watchlist_file_is_refused_without_reading_it(
    demo_gateway: GatewayProcess, postgres_url: str, stats_file: Path, tmp_path: Path
) -> None:
    _seed(postgres_url)
    watchlist = tmp_path / "huge.yaml"
    line = b"  - HK.00700\n"
    with watchlist.open("wb") as handle:
        handle.write(b"codes:\n")
        handle.write(line * (20 * 1024 * 1024 // len(line)))
    size = watchlist.stat().st_size
    assert size > 20_000_000

    result = run_load(loader_env(demo_gateway, postgres_url, watchlist=watchlist), tmp_path, timeout=60)

    assert str(watchlist) in result.stderr and f"{size} bytes" in result.stderr, result.output
    assert result.peak_rss_bytes < MAX_PEAK_RSS, f"loader peaked at {result.peak_rss_bytes / 2**20:.0f} MiB"
    _assert_refused_untouched(result, [], postgres_url, stats_file, demo_gateway)
