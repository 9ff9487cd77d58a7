"""Requests per code: a weekly refresh and a full crawl of the demo universe, against their floors.

The floor of a full crawl is ceil(rows / 50) (50 rows a page, the most the API gives); the floor of a
refresh is 1 request (the newest page holds the new rows and the revisions). Counts come from the
simulated gateway's own stats file, so they are what the gateway served, resends included.

Usage: python bench/requests_per_code.py [--database-url URL]
Writes bench/results/requests_per_code.json.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipelines.config import RateLimit, Settings  # noqa: E402
from pipelines.crawl.crawler import open_crawler  # noqa: E402
from pipelines.warehouse import upgrade  # noqa: E402
from proto_client.simulator.demo_data import demo_codes, rows_for  # noqa: E402
from tests.support.crawl import read_stats  # noqa: E402
from tests.support.databases import fresh_postgres_database  # noqa: E402
from tests.support.gateway import start_gateway  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
AS_OF = date(2026, 5, 15)
WEEK_LATER = AS_OF + timedelta(days=7)


def crawl(url: str, as_of: date, revision: int, stats_dir: Path, name: str) -> dict[str, int]:
    """Load every demo code against a gateway serving `as_of`; returns accepted requests per code."""
    stats_file = stats_dir / f"{name}.json"
    gateway = start_gateway(
        ["--rate", "off", "--as-of", as_of.isoformat(), "--revision", str(revision), "--stats-file", str(stats_file)]
    )
    try:
        with open_crawler(Settings(gateway.host, gateway.port, RateLimit(10_000, 1.0), url)) as crawler:
            results = crawler.crawl_codes(demo_codes())
    finally:
        gateway.stop()
    failed = [f"{r.code}: {r.error}" for r in results if not r.ok]
    if failed:
        raise RuntimeError("crawl failed: " + "; ".join(failed))
    return dict(read_stats(stats_file)["by_code"])


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(prog="bench.requests_per_code", description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None, help="warehouse (default: a throwaway Postgres database)")
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        url = args.database_url or stack.enter_context(fresh_postgres_database("si_bench"))
        upgrade(url)
        stats_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        full = crawl(url, AS_OF, 0, stats_dir, "full")
        weekly = crawl(url, WEEK_LATER, 1, stats_dir, "weekly")
    per_code = {
        code: {
            "rows": len(rows_for(code, AS_OF)),
            "full_requests": full.get(code, 0),
            "full_floor": max(1, math.ceil(len(rows_for(code, AS_OF)) / 50)),
            "weekly_requests": weekly.get(code, 0),
            "weekly_floor": 1,
        }
        for code in demo_codes()
    }
    result: dict[str, object] = {
        "benchmark": "requests_per_code",
        "as_of": AS_OF.isoformat(),
        "weekly_as_of": WEEK_LATER.isoformat(),
        "codes": len(per_code),
        "full_requests": sum(c["full_requests"] for c in per_code.values()),
        "full_floor": sum(c["full_floor"] for c in per_code.values()),
        "weekly_requests": sum(c["weekly_requests"] for c in per_code.values()),
        "weekly_floor": len(per_code),
        "per_code": per_code,
    }
    result["ok"] = (
        result["full_requests"] == result["full_floor"] and result["weekly_requests"] == result["weekly_floor"]
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "requests_per_code.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "per_code"}, indent=2))
    return result


if __name__ == "__main__":
    sys.exit(0 if main()["ok"] else 1)
