"""Upsert throughput against plain COPY on PostgreSQL (a benchmark, not a test).

    .venv/bin/python bench/upsert_throughput.py [--rows 1000000] [--admin-url URL]

Loads generated US rows into a throwaway database three ways, each in one transaction:
  * upsert into the empty table (all inserts),
  * upsert of the same rows again (a re-load: all unchanged),
  * plain COPY of the same rows into an unindexed table (the ceiling).
Prints rows/s and the upsert/COPY ratios (target: at least 0.5) and writes bench/results/upsert_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from operator import attrgetter
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from pipelines.warehouse import create_engine_for, upgrade, upsert_batch
from proto_client.records import UsShortInterestRow
from proto_client.security import Market

DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
RESULTS = Path(__file__).with_name("results") / "upsert_throughput.json"
DATES_PER_CODE = 500
TARGET_RATIO = 0.5


def generate_rows(count: int) -> list[UsShortInterestRow]:
    """`count` distinct rows: DATES_PER_CODE consecutive days for as many codes as needed."""
    first = date(2000, 1, 3)
    days = [first + timedelta(days=i) for i in range(DATES_PER_CODE)]
    stamps = [int(datetime(d.year, d.month, d.day, tzinfo=Market.US.tz).timestamp()) for d in days]
    rows = []
    for i in range(count):
        code_no, day_no = divmod(i, DATES_PER_CODE)
        rows.append(
            UsShortInterestRow(
                code=f"US.B{code_no:06d}",
                trade_date=days[day_no],
                timestamp=stamps[day_no],
                shares_short=1_000_000 + i * 7 % 9_999_991 + 2**32,
                short_percent=(i % 10_000) / 97.0,
                avg_daily_share_volume=500_000 + i % 123_457,
                days_to_cover=(i % 997) / 13.0,
                close_price=10.0 + (i % 50_000) / 100.0,
                last_close_price=10.0 + ((i + 1) % 50_000) / 100.0,
            )
        )
    return rows


def copy_baseline(engine: sa.Engine, rows: Sequence[UsShortInterestRow]) -> None:
    columns = [
        "code",
        "trade_date",
        "source_timestamp",
        "shares_short",
        "short_percent",
        "avg_daily_share_volume",
        "days_to_cover",
        "close_price",
        "last_close_price",
    ]
    attributes = ["timestamp" if c == "source_timestamp" else c for c in columns]
    getter = attrgetter(*attributes)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE copy_baseline (code text, trade_date date, source_timestamp int8, shares_short int8, "
            "short_percent float8, avg_daily_share_volume int8, days_to_cover float8, close_price float8, "
            "last_close_price float8)"
        )
        cursor = conn.connection.cursor()
        with cursor.copy(f"COPY copy_baseline ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["text", "date", "int8", "int8", "float8", "int8", "float8", "float8", "float8"])
            for row in rows:
                copy.write_row(getter(row))
        cursor.close()


@contextmanager
def throwaway_database(admin_url: str) -> Iterator[str]:
    name = f"si_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _timed(label: str, rows: int, work: Any) -> dict[str, Any]:
    started = time.perf_counter()
    outcome = work()
    seconds = time.perf_counter() - started
    rate = rows / seconds
    print(f"{label:<22} {rows:>10,} rows  {seconds:8.2f} s  {rate:>12,.0f} rows/s")
    return {"seconds": round(seconds, 3), "rows_per_s": round(rate), "result": outcome}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to load (default 1,000,000)")
    parser.add_argument(
        "--admin-url",
        default=os.environ.get("SHORTINTEREST_TEST_PG_URL", DEFAULT_ADMIN_URL),
        help="superuser URL used to create and drop the throwaway database",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON results")
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error(f"--rows must be positive, got {args.rows}")

    rows = generate_rows(args.rows)
    with throwaway_database(args.admin_url) as url:
        upgrade(url)
        engine = create_engine_for(url)
        try:
            copy = _timed("COPY (unindexed)", len(rows), lambda: copy_baseline(engine, rows))
            first = _timed("upsert into empty", len(rows), lambda: upsert_batch(engine, rows))
            again = _timed("upsert re-load", len(rows), lambda: upsert_batch(engine, rows))
        finally:
            engine.dispose()
    for run in (first, again):
        run["result"] = _as_dict(run["result"])
    copy.pop("result")
    report = {
        "rows": len(rows),
        "copy": copy,
        "upsert_empty": first,
        "upsert_reload": again,
        "ratio_upsert_empty_to_copy": round(first["rows_per_s"] / copy["rows_per_s"], 3),
        "ratio_upsert_reload_to_copy": round(again["rows_per_s"] / copy["rows_per_s"], 3),
        "target_ratio": TARGET_RATIO,
    }
    print(
        f"upsert/COPY: empty {report['ratio_upsert_empty_to_copy']:.2f}, "
        f"re-load {report['ratio_upsert_reload_to_copy']:.2f} (target >= {TARGET_RATIO})"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    return report


def _as_dict(result: Any) -> dict[str, int]:
    return {"inserted": result.inserted, "updated": result.updated, "unchanged": result.unchanged}


if __name__ == "__main__":
    main()
