"""Whole-load overhead: what a load of 2,000 codes costs beyond the gateway's rate limit, and its memory.

The rate limit is lifted on both sides (the simulated gateway's and the shared limiter's, which stays in
the path), so what remains is the loader's own work per code: its crawl lock and bookkeeping, the
limiter's reservations, requests and decoding, and the page writes. Two loads through the crawler, as
`shortinterest load` runs them, into a PostgreSQL warehouse: the first load of every code's whole history,
then the incremental refresh a week later (one page per code, with revisions). Each load runs in a
process of its own, whose peak RSS is read after the first tenth of the codes and at the end, and whose
CPU time is reported beside the wall time (on a shared machine the wall time also holds waits for it). Targets:
the refresh <= 20 ms per code; memory flat in the number of codes (end / first tenth <= 1.10).

    .venv/bin/python bench/load_overhead.py [--codes 2000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipelines.config import RateLimit, Settings  # noqa: E402
from pipelines.crawl.crawler import open_crawler  # noqa: E402
from pipelines.warehouse import upgrade  # noqa: E402
from proto_client.simulator.demo_data import demo_codes  # noqa: E402
from tests.support.databases import fresh_postgres_database  # noqa: E402
from tests.support.gateway import start_gateway  # noqa: E402

DEFAULT_OUTPUT = ROOT / "bench" / "results" / "load_overhead.json"
TARGET_REFRESH_MS_PER_CODE = 20.0
TARGET_RSS_GROWTH = 1.10
AS_OF = date(2026, 5, 15)
WEEK_LATER = AS_OF + timedelta(days=7)
# Far above anything one process reaches: the limiter stays in the path but never waits.
LIFTED = RateLimit(100_000, 1.0)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def worker(host: str, port: int, database_url: str, codes_file: Path) -> None:
    """Load the codes listed in `codes_file`; print what it took as one JSON line."""
    codes = codes_file.read_text(encoding="utf-8").split()
    tenth = max(1, len(codes) // 10)
    settings = Settings(opend_host=host, opend_port=port, rate_limit=LIFTED, database_url=database_url)
    pages = rows = 0
    early_rss = 0.0
    failed: list[str] = []
    started, cpu = time.perf_counter(), time.process_time()
    with open_crawler(settings) as crawler:
        for index, code in enumerate(codes, start=1):
            result = crawler.crawl_code(code)
            if not result.ok:
                failed.append(f"{code}: {result.error}")
            pages += result.pages
            rows += result.inserted + result.updated + result.unchanged
            if index == tenth:
                early_rss = _peak_rss_mb()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    report = {"codes": len(codes), "pages": pages, "rows": rows, "seconds": elapsed, "cpu_seconds": cpu}
    report["failed"] = failed[:5]
    report |= {"peak_rss_mb_first_tenth": early_rss, "peak_rss_mb_end": _peak_rss_mb()}
    print(json.dumps(report), flush=True)


def load(database_url: str, codes_file: Path, as_of: date, revision: int, extra: int) -> dict[str, object]:
    gateway = start_gateway(
        ["--rate", "off", "--as-of", as_of.isoformat(), "--revision", str(revision), "--extra-codes", str(extra)]
    )
    try:
        command = [sys.executable, __file__, "--worker", gateway.host, str(gateway.port), database_url]
        proc = subprocess.run([*command, str(codes_file)], capture_output=True, text=True, check=False)
    finally:
        gateway.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"load failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    if report["failed"]:
        raise RuntimeError(f"codes failed: {report['failed']}")
    seconds, codes = float(report["seconds"]), int(report["codes"])
    report["ms_per_code"] = round(seconds / codes * 1000, 2)
    report["ms_per_page"] = round(seconds / int(report["pages"]) * 1000, 2)
    report["loader_cpu_ms_per_code"] = round(float(report["cpu_seconds"]) / codes * 1000, 2)
    report["rss_growth"] = round(report["peak_rss_mb_end"] / report["peak_rss_mb_first_tenth"], 3)
    print(
        f"{codes} codes, {report['pages']} pages in {seconds:.1f} s: {report['ms_per_code']} ms per code, "
        f"peak RSS {report['peak_rss_mb_first_tenth']:.0f} -> {report['peak_rss_mb_end']:.0f} MB",
        flush=True,
    )
    return report


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--codes", type=int, default=2000, help="codes to load (default: %(default)s)")
    parser.add_argument("--database-url", default=None, help="PostgreSQL warehouse (default: a throwaway database)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results file")
    args = parser.parse_args(argv)
    named = len(demo_codes())
    if args.codes < named:
        parser.error(f"--codes must be at least {named} (the named demo codes)")
    extra = args.codes - named
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="load_overhead_")))
        database_url = args.database_url or stack.enter_context(fresh_postgres_database("si_bench"))
        upgrade(database_url)
        codes_file = scratch / "codes.txt"
        codes_file.write_text("\n".join(demo_codes(extra)), encoding="utf-8")
        print(f"first load of {args.codes} codes ...", flush=True)
        first = load(database_url, codes_file, AS_OF, 0, extra)
        print("incremental refresh a week later ...", flush=True)
        refresh = load(database_url, codes_file, WEEK_LATER, 1, extra)
    growth = max(float(first["rss_growth"]), float(refresh["rss_growth"]))  # type: ignore[arg-type]
    results: dict[str, object] = {
        "codes": args.codes,
        "first_load": first,
        "refresh": refresh,
        "target_refresh_ms_per_code": TARGET_REFRESH_MS_PER_CODE,
        "target_rss_growth": TARGET_RSS_GROWTH,
        "within_target": float(refresh["ms_per_code"]) <= TARGET_REFRESH_MS_PER_CODE  # type: ignore[arg-type]
        and growth <= TARGET_RSS_GROWTH,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--worker":
        worker(sys.argv[2], int(sys.argv[3]), sys.argv[4], Path(sys.argv[5]))
    else:
        main()
