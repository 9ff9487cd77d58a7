"""A refresh costs one request per code, inserts what is new, applies revisions, and touches nothing else."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from pipelines.config import RateLimit, Settings
from pipelines.crawl.crawler import open_crawler
from pipelines.warehouse import create_engine_for, upgrade
from proto_client.simulator.demo_data import REVISED_ROWS
from tests.support.crawl import audit_stamps, expected_rows, read_stats, stored_rows
from tests.support.gateway import GatewayProcess

FIRST_AS_OF = date(2026, 5, 15)
LATER_AS_OF = date(2026, 5, 22)  # one new HK week; no new US settlement date yet
CODES = ("HK.00700", "US.AAPL")


@pytest.mark.slow
def test_weekly_refresh_reads_one_page_and_applies_new_rows_and_revisions(
    postgres_url: str, gateway_factory: Callable[..., GatewayProcess], tmp_path: Path
) -> None:
    upgrade(postgres_url)
    first = gateway_factory("--rate", "off", "--as-of", FIRST_AS_OF.isoformat())
    with open_crawler(Settings(first.host, first.port, RateLimit(1000, 1.0), postgres_url)) as crawler:
        assert all(r.ok and r.full for r in crawler.crawl_codes(CODES))
    first.stop()

    engine = create_engine_for(postgres_url)
    try:
        before = {code: audit_stamps(engine, code) for code in CODES}
        stats_file = tmp_path / "stats.json"
        later = gateway_factory(
            "--rate", "off", "--as-of", LATER_AS_OF.isoformat(), "--revision", "1", "--stats-file", str(stats_file)
        )
        with open_crawler(Settings(later.host, later.port, RateLimit(1000, 1.0), postgres_url)) as crawler:
            results = crawler.crawl_codes(CODES)

        assert read_stats(stats_file)["by_code"] == {code: 1 for code in CODES}
        for code, result in zip(CODES, results, strict=True):
            expected = expected_rows(code, LATER_AS_OF, revision=1)
            old_dates = set(before[code])
            inserted = {row[1] for row in expected} - old_dates
            revised = {row[1] for row in expected[:REVISED_ROWS]} & old_dates
            assert result.ok, result.error
            assert not result.full and result.resumed_from is None
            assert (result.pages, result.requests) == (1, 1)
            assert (result.inserted, result.updated) == (len(inserted), len(revised))
            assert result.unchanged == 50 - len(inserted) - len(revised)
            assert stored_rows(engine, code) == expected

            after = audit_stamps(engine, code)
            for day, (first_loaded, updated) in after.items():
                if day in inserted:
                    assert first_loaded == updated and first_loaded > max(u for _, u in before[code].values())
                elif day in revised:
                    assert first_loaded == before[code][day][0] and updated > before[code][day][1]
                else:
                    assert (first_loaded, updated) == before[code][day], day
        assert sum(r.inserted for r in results) >= 1 and sum(r.updated for r in results) >= 3
    finally:
        engine.dispose()


def test_nothing_new_still_costs_only_one_request(
    sqlite_url: str, gateway_factory: Callable[..., GatewayProcess], tmp_path: Path
) -> None:
    upgrade(sqlite_url)
    stats_file = tmp_path / "stats.json"
    gateway = gateway_factory("--rate", "off", "--as-of", FIRST_AS_OF.isoformat(), "--stats-file", str(stats_file))
    settings = Settings(gateway.host, gateway.port, RateLimit(1000, 1.0), sqlite_url)
    with open_crawler(settings) as crawler:
        full = crawler.crawl_code("US.AAPL")
        again = crawler.crawl_code("US.AAPL")
        forced = crawler.crawl_code("US.AAPL", full=True)
    assert full.requests == forced.requests == 7
    assert (again.requests, again.inserted, again.updated, again.unchanged) == (1, 0, 0, 50)
    assert forced.full and forced.unchanged == full.inserted
    assert read_stats(stats_file)["by_code"] == {"US.AAPL": 15}
