"""Page write latency: how long the warehouse takes to store one 50-row page, as the crawler writes it.

Each write is one transaction (begin, the upsert, commit), timed from the client, on PostgreSQL and on
SQLite: 50 new rows, the same 50 rows again (all unchanged, the common case of a weekly refresh), and 50
rows of which three are revised. Every write's counts are checked, so a fast wrong answer cannot pass.
Reported: p50 and p99 per case, and the client's CPU time (p50), which tells the loader's own work from
waits on a busy machine. Target: p50 <= 10 ms on a local PostgreSQL, about 1 % of the second the
gateway's rate limit gives each page anyway.

    .venv/bin/python bench/page_write_latency.py [--pages 300] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from pipelines.warehouse import UpsertResult, create_engine_for, upgrade, upsert_batch  # noqa: E402
from proto_client.records import UsShortInterestRow  # noqa: E402
from proto_client.security import Market  # noqa: E402
from tests.support.databases import fresh_postgres_database  # noqa: E402

DEFAULT_OUTPUT = ROOT / "bench" / "results" / "page_write_latency.json"
PAGE_ROWS = 50
REVISED = 3
TARGET_P50_MS = 10.0
FIRST_DAY = date(1980, 1, 1)
WARM_UP = 20


def page(index: int, close: float = 10.0) -> list[UsShortInterestRow]:
    """The `index`-th page of one code's history: 50 consecutive days, newest first as the gateway sends them."""
    rows = []
    for offset in range(PAGE_ROWS):
        day = FIRST_DAY + timedelta(days=index * PAGE_ROWS + offset)
        stamp = int(datetime(day.year, day.month, day.day, tzinfo=Market.US.tz).timestamp())
        rows.append(UsShortInterestRow("US.BENCH", day, stamp, 1_000 + offset, 1.25, 40_000, 0.5, close, 9.5))
    return rows[::-1]


def timed(
    engine: sa.Engine, pages: Sequence[Callable[[], list[UsShortInterestRow]]], expected: UpsertResult
) -> list[float]:
    """Milliseconds of each page's write, wall and this process's CPU; the first WARM_UP are not kept."""
    times, cpu = [], []
    for make in pages:
        rows = make()
        started, cpu_started = time.perf_counter(), time.process_time()
        result = upsert_batch(engine, rows)
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
        if result != expected:
            raise RuntimeError(f"expected {expected}, the upsert said {result}")
    return times[WARM_UP:], cpu[WARM_UP:]


def measure(url: str, count: int) -> dict[str, dict[str, float]]:
    upgrade(url)
    engine = create_engine_for(url)
    try:
        total = count + WARM_UP
        new = timed(engine, [lambda i=i: page(i) for i in range(total)], UpsertResult(inserted=PAGE_ROWS))
        stored = page(0)
        unchanged = timed(engine, [lambda: stored] * total, UpsertResult(unchanged=PAGE_ROWS))

        def revised(round_number: int) -> list[UsShortInterestRow]:
            # A different value each round, so each round's three rows really change.
            return [replace(r, close_price=100.0 + round_number) if i < REVISED else r for i, r in enumerate(stored)]

        revised_times = timed(
            engine,
            [lambda i=i: revised(i) for i in range(total)],
            UpsertResult(updated=REVISED, unchanged=PAGE_ROWS - REVISED),
        )
    finally:
        engine.dispose()
    return {
        name: {
            "p50_ms": _percentile(times, 50),
            "p99_ms": _percentile(times, 99),
            "client_cpu_p50_ms": _percentile(cpu, 50),
            "pages": len(times),
        }
        for name, (times, cpu) in (("all_new", new), ("all_unchanged", unchanged), ("three_revised", revised_times))
    }


def _percentile(times: list[float], p: int) -> float:
    return round(statistics.quantiles(times, n=100, method="inclusive")[p - 1], 3) if p < 100 else max(times)


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=300, help="measured pages per case (default: %(default)s)")
    parser.add_argument("--database-url", default=None, help="PostgreSQL warehouse (default: a throwaway database)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results file")
    args = parser.parse_args(argv)
    if args.pages < 10:
        parser.error("--pages must be at least 10")
    results: dict[str, object] = {"page_rows": PAGE_ROWS, "revised_rows": REVISED, "target_p50_ms": TARGET_P50_MS}
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="page_write_latency_")))
        postgres = args.database_url or stack.enter_context(fresh_postgres_database("si_bench"))
        for name, url in (("postgresql", postgres), ("sqlite", f"sqlite:///{scratch / 'warehouse.db'}")):
            print(f"{name} ...", flush=True)
            results[name] = measure(url, args.pages)
    postgres_p50 = max(case["p50_ms"] for case in results["postgresql"].values())  # type: ignore[union-attr]
    results["within_target"] = postgres_p50 <= TARGET_P50_MS
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
