"""`shortinterest status --check`, the health check for outside monitors: a fresh, a stale and a failed watchlist."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest

from pipelines.orchestration.quality import expected_report, market_today
from pipelines.warehouse import upgrade
from proto_client.security import Market
from tests.support.crawl import run_cli
from tests.support.gateway import GatewayProcess

# Every test here waits seconds on loads, gateways, outages, services or Dagster runs: outside the inner loop.
pytestmark = pytest.mark.slow

CODES = ("US.AAPL", "HK.00700")


def check(postgres_url: str, gateway: GatewayProcess, tmp_path: Path, *codes: str) -> tuple[int, list[str]]:
    """Load `codes` from `gateway` into a fresh warehouse, then run the health check; its exit status and lines."""
    upgrade(postgres_url)
    watchlist = tmp_path / "watchlist.yaml"
    watchlist.write_text("codes:\n" + "".join(f"  - {code}\n" for code in codes))
    env = {**gateway.env(), "SHORTINTEREST_DATABASE_URL": postgres_url, "SHORTINTEREST_WATCHLIST": str(watchlist)}
    run_cli("load", env=env)
    result = run_cli("status", "--check", env=env)
    assert not result.stderr.strip(), result.stderr
    return result.returncode, result.stdout.splitlines()


def test_a_fresh_watchlist_passes(
    postgres_url: str, gateway_factory: Callable[..., GatewayProcess], tmp_path: Path
) -> None:
    gateway = gateway_factory("--rate", "off")  # serves every report published up to today

    status, lines = check(postgres_url, gateway, tmp_path, *CODES)

    assert (status, lines) == (0, ["ok: all 2 watchlist code(s) hold their newest published report and loaded cleanly"])


def test_a_stale_watchlist_fails_naming_each_code_and_the_missing_report(
    postgres_url: str, gateway_factory: Callable[..., GatewayProcess], tmp_path: Path
) -> None:
    as_of = date.today() - timedelta(days=60)  # the source stopped publishing two months ago
    gateway = gateway_factory("--rate", "off", "--as-of", as_of.isoformat())

    status, lines = check(postgres_url, gateway, tmp_path, *CODES)

    assert status == 1
    assert [line.split(":")[0] for line in lines] == list(CODES)
    for line, market in zip(lines, (Market.US, Market.HK), strict=True):
        expected = expected_report(market, market_today(market))
        assert expected is not None
        assert "stale: newest trade date " in line and f"missing the {expected.report} report" in line


def test_a_failed_code_fails_the_check_and_the_others_are_not_listed(
    postgres_url: str, gateway_factory: Callable[..., GatewayProcess], tmp_path: Path
) -> None:
    gateway = gateway_factory("--rate", "off")

    status, lines = check(postgres_url, gateway, tmp_path, *CODES, "US.NOPE")

    assert status == 1
    assert len(lines) == 1 and lines[0].startswith("US.NOPE: last load failed: "), lines
