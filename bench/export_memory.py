"""Peak memory of `shortinterest export` on PostgreSQL: flat in the row count (a benchmark, not a test).

    .venv/bin/python bench/export_memory.py [--rows 1000000] [--admin-url URL]

Fills a throwaway warehouse with generated rows (half US, half HK, a few values missing), then runs
`shortinterest export --format F -o FILE` as its own process for each format, once for a tenth of the rows
(`--since`) and once for all of them, and takes each process's peak resident set size from the kernel
(wait4's ru_maxrss). Targets: at most 300 MB for the full export in every format, and the full export's peak
within 1.25 times the tenth's (memory does not grow with the rows). Writes bench/results/export_memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from pipelines.warehouse import upgrade

DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
RESULTS = Path(__file__).with_name("results") / "export_memory.json"
FORMATS = ("csv", "json", "parquet")
DATES_PER_CODE = 500
FIRST_DAY = date(2005, 1, 3)
TARGET_PEAK_MB = 300
TARGET_GROWTH = 1.25

# Each table gets codes x DATES_PER_CODE rows; every 97th value is missing, as published figures sometimes are.
_FILL = {
    "us_short_interest": """
        INSERT INTO us_short_interest (code, trade_date, source_timestamp, shares_short, short_percent,
            avg_daily_share_volume, days_to_cover, close_price, last_close_price)
        SELECT 'US.S' || lpad(c::text, 5, '0'), :first + d, extract(epoch FROM (:first + d)::timestamp)::bigint,
            CASE WHEN (c + d) % 97 = 0 THEN NULL ELSE 1000000 + c * 37 + d END, (c % 50) + d / 1000.0,
            5000000 + d, 1.5 + c % 7, 10 + d / 100.0, 10 + (d + 1) / 100.0
        FROM generate_series(1, :codes) AS c, generate_series(0, :dates - 1) AS d""",
    "hk_short_interest": """
        INSERT INTO hk_short_interest (code, trade_date, source_timestamp, aggregated_short,
            aggregated_short_ratio, close_price, last_close_price)
        SELECT 'HK.' || lpad((80000 + c)::text, 5, '0'), :first + d,
            extract(epoch FROM (:first + d)::timestamp)::bigint,
            CASE WHEN (c + d) % 97 = 0 THEN NULL ELSE 2000000 + c * 41 + d END, (c % 30) / 10.0,
            CASE WHEN (c * d) % 97 = 0 THEN NULL ELSE 20 + d / 100.0 END, 20 + (d + 1) / 100.0
        FROM generate_series(1, :codes) AS c, generate_series(0, :dates - 1) AS d""",
}


def fill(url: str, rows: int) -> None:
    codes = max(1, rows // (2 * DATES_PER_CODE))
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in _FILL.values():
                conn.execute(sa.text(statement), {"first": FIRST_DAY, "codes": codes, "dates": DATES_PER_CODE})
            conn.execute(sa.text("ANALYZE"))
    finally:
        engine.dispose()


def peak_export(url: str, fmt: str, out: Path, since: date | None) -> tuple[float, int, float]:
    """(peak RSS in MB, rows written, seconds) of one `shortinterest export` process."""
    argv = [sys.executable, "-m", "pipelines.cli", "export", "--format", fmt, "-o", str(out)]
    argv += ["--since", since.isoformat()] if since else []
    env = {**os.environ, "SHORTINTEREST_DATABASE_URL": url}
    started = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"export --format {fmt} failed ({proc.returncode}): {err.strip()}")
    rows = int(err.split("exported ", 1)[1].split(" rows", 1)[0])
    return usage.ru_maxrss / 1024, rows, elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--admin-url", default=os.environ.get("SHORTINTEREST_TEST_PG_URL", DEFAULT_ADMIN_URL))
    args = parser.parse_args(argv)
    name = f"si_bench_export_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(args.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = make_url(args.admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        fill(url, args.rows)
        tenth_since = FIRST_DAY + timedelta(days=DATES_PER_CODE - DATES_PER_CODE // 10)
        runs = {}
        with tempfile.TemporaryDirectory() as scratch:
            for fmt in FORMATS:
                out = Path(scratch) / f"export.{fmt}"
                small_mb, small_rows, _ = peak_export(url, fmt, out, tenth_since)
                full_mb, full_rows, seconds = peak_export(url, fmt, out, None)
                runs[fmt] = {
                    "rows": full_rows,
                    "peak_mb": round(full_mb, 1),
                    "tenth_rows": small_rows,
                    "tenth_peak_mb": round(small_mb, 1),
                    "growth": round(full_mb / small_mb, 3),
                    "seconds": round(seconds, 1),
                    "file_mb": round(out.stat().st_size / 2**20, 1),
                }
                print(f"{fmt}: {json.dumps(runs[fmt])}", flush=True)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    result = {"runs": runs, "target_peak_mb": TARGET_PEAK_MB, "target_growth": TARGET_GROWTH}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
