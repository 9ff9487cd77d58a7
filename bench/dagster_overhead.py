"""What Dagster adds to a weekly refresh: a 200-code incremental crawl through the assets vs the Crawler alone.

Both sides do the same work against the same simulated gateway (rate limit off) and warehouse, with the
shared limiter set far above what they can use: one request per code, the newest page re-read and
upserted. The Dagster side runs as the schedules do, one run per market over all its codes, on a
SQLite-backed instance (the `dagster dev` default), with per-code materializations and metadata; the
asset checks are timed separately. Reported: seconds per code beyond the direct crawl. Target < 0.1 s.

    .venv/bin/python bench/dagster_overhead.py [--codes 200] [--database-url URL] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import dagster as dg  # noqa: E402

from pipelines.config import RateLimit, Settings  # noqa: E402
from pipelines.crawl.crawler import open_crawler  # noqa: E402
from pipelines.orchestration.resources import resources_from_settings  # noqa: E402
from pipelines.orchestration.runner import run_market  # noqa: E402
from pipelines.orchestration.watchlist_sync import sync_partitions  # noqa: E402
from pipelines.warehouse import upgrade  # noqa: E402
from proto_client.security import Market, parse_code  # noqa: E402
from proto_client.simulator.demo_data import demo_codes  # noqa: E402
from tests.support.crawl import load_history  # noqa: E402
from tests.support.gateway import start_gateway  # noqa: E402

DEFAULT_OUTPUT = ROOT / "bench" / "results" / "dagster_overhead.json"
TARGET_SECONDS_PER_CODE = 0.1
AS_OF = "2026-05-01"
# Far above anything one process reaches: the limiter stays in the path but never waits.
HIGH_LIMIT = RateLimit(100_000, 1.0)


def _direct(settings: Settings, codes: Sequence[str]) -> float:
    started = time.perf_counter()
    with open_crawler(settings) as crawler:
        results = crawler.crawl_codes(codes)
    elapsed = time.perf_counter() - started
    bad = [r for r in results if not r.ok or r.requests != 1]
    if bad:
        raise RuntimeError(f"direct refresh was not one clean request per code: {bad[:3]}")
    return elapsed


def _through_dagster(
    instance: dg.DagsterInstance, settings: Settings, by_market: dict[Market, list[str]], *, with_checks: bool
) -> float:
    resources = resources_from_settings(settings)
    started = time.perf_counter()
    for market, codes in by_market.items():
        run = run_market(instance, market, codes, resources, with_checks=with_checks, log_level="WARNING")
        bad = [c for c in run.codes if not c.ok or c.requests != 1]
        if not run.success or bad:
            raise RuntimeError(f"Dagster refresh of {market.prefix} failed: {run.failure or bad[:3]}")
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--codes", type=int, default=200, help="codes to refresh (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=2, help="measured rounds of each side (default: %(default)s)")
    parser.add_argument("--database-url", default=None, help="warehouse URL (default: a temporary SQLite file)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results file")
    args = parser.parse_args(argv)
    named = len(demo_codes())
    if args.codes < named or args.repeat < 1:
        parser.error(f"--codes must be at least {named} (the named demo codes) and --repeat at least 1")

    codes = demo_codes(args.codes - named)
    by_market = {m: [c for c in codes if parse_code(c).market is m] for m in Market}
    with tempfile.TemporaryDirectory(prefix="dagster_overhead_") as scratch:
        database_url = args.database_url or f"sqlite:///{Path(scratch) / 'warehouse.db'}"
        upgrade(database_url)
        gateway = start_gateway(["--rate", "off", "--as-of", AS_OF, "--extra-codes", str(args.codes - named)])
        try:
            settings = Settings(
                opend_host=gateway.host, opend_port=gateway.port, rate_limit=HIGH_LIMIT, database_url=database_url
            )
            load_history(settings, codes)
            home = Path(scratch) / "dagster_home"
            home.mkdir()
            with dg.DagsterInstance.local_temp(tempdir=str(home)) as instance:
                sync_partitions(instance, lambda market: by_market[market])
                _through_dagster(instance, settings, by_market, with_checks=False)  # warm-up: imports, caches
                direct, dagster = [], []
                for round_number in range(1, args.repeat + 1):
                    direct.append(_direct(settings, codes))
                    dagster.append(_through_dagster(instance, settings, by_market, with_checks=False))
                    print(f"round {round_number}: direct {direct[-1]:.2f} s, Dagster {dagster[-1]:.2f} s", flush=True)
                with_checks = _through_dagster(instance, settings, by_market, with_checks=True)
        finally:
            gateway.stop()

    direct_s, dagster_s = statistics.median(direct), statistics.median(dagster)
    overhead = (dagster_s - direct_s) / len(codes)
    results: dict[str, object] = {
        "codes": len(codes),
        "runs_per_refresh": len(by_market),
        "warehouse": "sqlite" if args.database_url is None else args.database_url.split(":", 1)[0],
        "direct_seconds": direct,
        "dagster_seconds": dagster,
        "dagster_with_checks_seconds": with_checks,
        "direct_seconds_per_code": direct_s / len(codes),
        "dagster_seconds_per_code": dagster_s / len(codes),
        "overhead_seconds_per_code": overhead,
        "checks_seconds": with_checks - dagster_s,
        "target_overhead_seconds_per_code": TARGET_SECONDS_PER_CODE,
        "within_target": overhead < TARGET_SECONDS_PER_CODE,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
