"""Analyst queries at full-market scale on PostgreSQL: every code's latest report, one date's movers and one
code's changes (targets 100, 100 and 10 ms), next to the crawler's 50-row page upsert (target p50 10 ms).

    .venv/bin/python bench/analyst_queries.py [--codes 10000] [--repeat 15] [--admin-url URL] [--rebuild]

The warehouse is built once with SQL (generate_series) into its own database, si_bench_analyst_<codes>,
and reused while it exists (--rebuild makes it again): half the codes US with 25 years of twice-monthly
reports, half HK with 14 years of weekly ones, loaded code by code as a backfill crawl stores them
(6.65 M rows for 10,000 codes, several minutes on two cores), each with its publication day as the loader
sets it. Each run migrates it to the current revision
first, so it measures the views as they are now. Times are client wall times from execute to the last
row fetched, medians of --repeat runs after a warm-up, with the server's own execution time beside them
(EXPLAIN ANALYZE without per-node timing, median of as many runs), which a busy machine disturbs less; the
report keeps each query's plan (EXPLAIN ANALYZE). The first window definitions of the views (revision 0001)
run once on the same data for the ratio. It also times the crawler's 50-row page upsert (target p50 <= 10
ms) on this warehouse, as new rows and as revisions, with the triggers and index the views need and, in the
same run, without them (dropped inside the transaction that is then rolled back), so their write-time cost
shows as a ratio, with this client's CPU per page and the triggers' own server time beside it.
"""

from __future__ import annotations

import argparse
import calendar
import json
import os
import re
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from pipelines.warehouse import create_engine_for, upgrade, upsert_rows  # noqa: E402
from proto_client.publication import published_on  # noqa: E402
from proto_client.records import UsShortInterestRow  # noqa: E402
from proto_client.security import Market  # noqa: E402

DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
RESULTS = ROOT / "bench" / "results" / "analyst_queries.json"
TARGET_MS = {"latest": 100.0, "movers": 100.0, "one_code": 10.0, "page_upsert_p50": 10.0}
US_MONTHS = 300  # 25 years, two reports a month
HK_WEEKS = 730  # 14 years, one report a week
US_FIRST = date(2001, 1, 15)  # reports on the 15th and the last day of each month, to 2025-12-31
NEWEST_US = date(2025, 12, 31)
NEWEST_HK = date(2025, 12, 26)
PAGE_ROWS = 50

# The LATERAL dependence on n keeps each code's rows together: the nested loop must run codes outermost.
_BUILD = [
    """
    INSERT INTO us_short_interest (code, trade_date, source_timestamp, shares_short, short_percent,
                                   avg_daily_share_volume, days_to_cover, close_price, last_close_price,
                                   published_on)
    SELECT code, d, CAST(extract(epoch FROM CAST(d AS timestamp) AT TIME ZONE 'America/New_York') AS bigint),
           CASE WHEN h % 997 = 0 THEN 0 WHEN h % 991 = 1 THEN NULL ELSE 100000 + h % 50000000 END,
           (h % 4000) / 100.0, 500000 + h % 9000000, (h % 3000) / 100.0, 1 + (h % 50000) / 100.0,
           1 + (h % 49999) / 100.0,
           (SELECT p.published_on FROM bench_publication_days p WHERE p.market = 'US' AND p.trade_date = d)
      FROM generate_series(1, {us_codes}) AS c(n)
     CROSS JOIN LATERAL generate_series(0, {us_months} * 2 - 1 + 0 * n) AS r(i)
     CROSS JOIN LATERAL (
           SELECT format('US.S%s', lpad(CAST(n AS text), 5, '0')) AS code,
                  CASE i % 2 WHEN 0 THEN CAST(DATE '{us_first}' + make_interval(months => i / 2) AS date)
                             ELSE CAST(DATE '{us_first}' + make_interval(months => i / 2 + 1) AS date) - 15 END AS d,
                  abs(hashint8(n * 10000 + i)) AS h) g
    """,
    """
    INSERT INTO hk_short_interest (code, trade_date, source_timestamp, aggregated_short, aggregated_short_ratio,
                                   close_price, last_close_price, published_on)
    SELECT code, d, CAST(extract(epoch FROM CAST(d AS timestamp) AT TIME ZONE 'Asia/Hong_Kong') AS bigint),
           CASE WHEN h % 997 = 0 THEN 0 WHEN h % 991 = 1 THEN NULL ELSE 100000 + h % 50000000 END,
           (h % 2000) / 100.0, 1 + (h % 50000) / 100.0, 1 + (h % 49999) / 100.0,
           (SELECT p.published_on FROM bench_publication_days p WHERE p.market = 'HK' AND p.trade_date = d)
      FROM generate_series(1, {hk_codes}) AS c(n)
     CROSS JOIN LATERAL generate_series(0, {hk_weeks} - 1 + 0 * n) AS w(i)
     CROSS JOIN LATERAL (
           SELECT format('HK.%s', lpad(CAST(n AS text), 5, '0')) AS code,
                  DATE '{hk_newest}' - 7 * ({hk_weeks} - 1 - i) AS d,
                  abs(hashint8(n * 10000 + i)) AS h) g
    """,
]

# The views as revision 0001 defined them: a window over every row of both tables.
_FIRST_LATEST = """
    SELECT market, code, trade_date, short_shares, short_percent, close_price, last_close_price, updated_at
      FROM (SELECT s.*, ROW_NUMBER() OVER (PARTITION BY code ORDER BY trade_date DESC) AS recency
              FROM short_interest s) ranked
     WHERE recency = 1
"""
_FIRST_CHANGES = """
    SELECT market, code, trade_date, short_shares, short_percent, previous_trade_date, previous_short_shares,
           short_shares - previous_short_shares AS short_shares_change,
           CASE WHEN previous_short_shares = 0 THEN NULL
                ELSE CAST(short_shares - previous_short_shares AS DOUBLE PRECISION) * 100 / previous_short_shares
           END AS short_shares_change_percent,
           close_price, last_close_price, updated_at
      FROM (SELECT s.*,
                   LAG(trade_date) OVER (PARTITION BY code ORDER BY trade_date) AS previous_trade_date,
                   LAG(short_shares) OVER (PARTITION BY code ORDER BY trade_date) AS previous_short_shares
              FROM short_interest s) with_previous
"""


def queries(latest: str, changes: str, codes: int) -> dict[str, tuple[str, dict[str, Any]]]:
    """The measured questions, each over the given view bodies (names or parenthesized definitions)."""
    movers = (
        f"SELECT * FROM {changes} c WHERE trade_date = %(day)s "
        "ORDER BY short_shares_change_percent {} NULLS LAST LIMIT 10"
    )
    one_code = f"SELECT * FROM {changes} c WHERE code = %(code)s ORDER BY trade_date"
    return {
        "latest": (f"SELECT * FROM {latest} l", {}),
        "movers_up_us": (movers.format("DESC"), {"day": NEWEST_US}),
        "movers_down_us": (movers.format("ASC"), {"day": NEWEST_US}),
        "movers_up_hk": (movers.format("DESC"), {"day": NEWEST_HK}),
        "movers_down_hk": (movers.format("ASC"), {"day": NEWEST_HK}),
        "one_code_us": (one_code, {"code": f"US.S{codes // 4:05d}"}),
        "one_code_hk": (one_code, {"code": f"HK.{codes // 4:05d}"}),
    }


def database_url(admin_url: str, name: str) -> str:
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def ensure_warehouse(admin_url: str, codes: int, *, rebuild: bool, prefix: str = "si_bench_analyst") -> str:
    """The benchmark warehouse's URL; built under a temporary name and renamed, so a complete one is reused."""
    name = f"{prefix}_{codes}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
            if exists and not rebuild:
                print(f"reusing database {name}", flush=True)
                return database_url(admin_url, name)
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}_building" WITH (FORCE)')
            conn.exec_driver_sql(f'CREATE DATABASE "{name}_building"')
        building = database_url(admin_url, f"{name}_building")
        upgrade(building)
        build(building, codes)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{name}_building" RENAME TO "{name}"')
    finally:
        admin.dispose()
    return database_url(admin_url, name)


def build(url: str, codes: int) -> None:
    us_codes = codes // 2
    params = {
        "us_codes": us_codes,
        "hk_codes": codes - us_codes,
        "us_months": US_MONTHS,
        "us_first": US_FIRST,
        "hk_weeks": HK_WEEKS,
        "hk_newest": NEWEST_HK,
    }
    engine = create_engine_for(url)
    try:
        for statement in _BUILD:
            started = time.perf_counter()
            with engine.begin() as conn:
                conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")
                publication_days(conn)
                count = conn.execute(sa.text(statement.format(**params))).rowcount
            print(f"built {count:,} rows in {time.perf_counter() - started:.0f} s", flush=True)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM (ANALYZE) us_short_interest, hk_short_interest, short_interest_newest")
    finally:
        engine.dispose()


def publication_days(conn: sa.Connection) -> None:
    """A temporary table of each built report date's publication day, as the loader sets published_on."""
    us = [date(US_FIRST.year + m // 12, m % 12 + 1, 15) for m in range(US_MONTHS)]
    us += [date(d.year, d.month, calendar.monthrange(d.year, d.month)[1]) for d in us]
    hk = [NEWEST_HK - timedelta(days=7 * week) for week in range(HK_WEEKS)]
    rows = [("US", day, published_on(Market.US, day)) for day in us]
    rows += [("HK", day, published_on(Market.HK, day)) for day in hk]
    conn.exec_driver_sql(
        "CREATE TEMPORARY TABLE bench_publication_days (market VARCHAR(2), trade_date DATE, published_on DATE, "
        "PRIMARY KEY (market, trade_date)) ON COMMIT DROP"
    )
    conn.execute(
        sa.text("INSERT INTO bench_publication_days VALUES (:market, :day, :published)"),
        [{"market": m, "day": d, "published": p} for m, d, p in rows],
    )


@dataclass(frozen=True)
class Timing:
    """One query's figures: wall-clock median and best, the CPU it cost per run (server and this client),
    and the server's own execution time (EXPLAIN ANALYZE without per-node timing), median and best."""

    median_ms: float
    best_ms: float
    cpu_ms: float | None
    rows: int
    server_median_ms: float
    server_best_ms: float


def backend_cpu_seconds(pid: int) -> float | None:
    """CPU seconds a local server process has used; None where /proc does not show it (a remote server)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_query(driver: Any, sql: str, params: dict[str, Any], repeat: int) -> Timing:
    """Milliseconds from execute to the last row fetched, after a warm-up run.

    On a shared machine the wall clock also counts time spent waiting for a core; the CPU time the server
    process and this client spent per run does not, so it shows what the query costs on a core of its own.
    """
    samples = []
    rows = 0
    pid = driver.info.backend_pid
    for run in range(repeat + 1):
        if run == 1:
            server_cpu, client_cpu = backend_cpu_seconds(pid), time.process_time()
        started = time.perf_counter()
        with driver.cursor() as cursor:
            cursor.execute(sql, params)
            rows = len(cursor.fetchall())
        samples.append((time.perf_counter() - started) * 1000)
    timed = samples[1:] or samples
    cpu_ms = None
    server_after = backend_cpu_seconds(pid)
    if repeat and server_cpu is not None and server_after is not None:
        cpu_ms = (server_after - server_cpu + time.process_time() - client_cpu) * 1000 / repeat
    server = [execution_ms(driver, sql, params) for _ in range(max(repeat, 1))]
    return Timing(statistics.median(timed), min(timed), cpu_ms, rows, statistics.median(server), min(server))


def execution_ms(driver: Any, sql: str, params: dict[str, Any]) -> float:
    """The server's execution time of one run, without the client's fetch and with no per-node timing."""
    with driver.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON) {sql}", params)
        found = re.search(r"Execution Time: ([\d.]+) ms", "\n".join(row[0] for row in cursor.fetchall()))
    if found is None:
        raise RuntimeError(f"EXPLAIN ANALYZE reported no execution time for {sql!r}")
    return float(found.group(1))


def time_queries(
    driver: Any, named: dict[str, tuple[str, dict[str, Any]]], repeat: int
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Each query's figures (see Timing) and its plan, by name, printed as they come."""
    figures: dict[str, dict[str, Any]] = {}
    plans: dict[str, str] = {}
    for name, (sql, params) in named.items():
        t = time_query(driver, sql, params, repeat)
        cpu = None if t.cpu_ms is None else round(t.cpu_ms, 2)
        figures[name] = {
            "median_ms": round(t.median_ms, 2),
            "best_ms": round(t.best_ms, 2),
            "cpu_ms": cpu,
            "server_median_ms": round(t.server_median_ms, 2),
            "server_best_ms": round(t.server_best_ms, 2),
            "rows": t.rows,
        }
        plans[name] = plan(driver, sql, params)
        print(
            f"{name:<18} {t.median_ms:8.2f} ms (best {t.best_ms:.2f}, CPU {cpu}; "
            f"server {t.server_median_ms:.2f}, best {t.server_best_ms:.2f})  {t.rows:>6} rows",
            flush=True,
        )
    return figures, plans


def plan(driver: Any, sql: str, params: dict[str, Any]) -> str:
    with driver.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def page_rows(code: str, first: date, step: timedelta, shares: int) -> list[UsShortInterestRow]:
    return [
        UsShortInterestRow(
            code=code,
            trade_date=day,
            timestamp=int(datetime(day.year, day.month, day.day, tzinfo=Market.US.tz).timestamp()),
            shares_short=shares + i,
            short_percent=1.5,
            avg_daily_share_volume=900_000,
            days_to_cover=2.0,
            close_price=10.0,
            last_close_price=10.5,
        )
        for i, day in enumerate(first + k * step for k in range(PAGE_ROWS))
    ]


def page_pages(conn: sa.Connection) -> dict[str, list[UsShortInterestRow]]:
    """Pages as the crawler writes them: a new code, reports newer than stored, and revisions of stored ones."""
    stored = conn.execute(
        sa.text("SELECT trade_date, source_timestamp FROM us_short_interest WHERE code = 'US.S00042' ORDER BY 1 DESC")
    ).all()[:PAGE_ROWS]
    revised = page_rows("US.S00042", stored[-1][0], timedelta(days=0), 7)
    revised = [replace(r, trade_date=d, timestamp=ts) for r, (d, ts) in zip(revised, reversed(stored), strict=True)]
    return {
        "new code": page_rows("US.ZNEW", date(2024, 1, 1), timedelta(days=7), 1_000),
        "newer reports": page_rows("US.S00043", NEWEST_US + timedelta(days=14), timedelta(days=14), 2_000),
        "revisions": revised,
    }


_MACHINERY_OFF = [
    "ALTER TABLE us_short_interest DISABLE TRIGGER USER",
    "DROP INDEX ix_us_short_interest_trade_date",
]


def time_pages(engine: sa.Engine, repeat: int) -> dict[str, dict[str, float]]:
    """p50 ms of one page upsert, with and without the views' write-time machinery; each page rolled back.

    Beside the p50: this client's CPU per page (p50, with the machinery), which the wall clock includes, and
    the triggers' own server time per page (median of EXPLAIN ANALYZE's trigger lines), which does not
    depend on how busy the machine is.
    """
    with engine.connect() as conn:
        pages = page_pages(conn)
    results: dict[str, dict[str, float]] = {}
    for label, rows in pages.items():
        results[label] = {}
        for mode, setup in (("with", []), ("without", _MACHINERY_OFF)):
            samples, cpu = [], []
            for _ in range(repeat + 1):
                with engine.connect() as conn:
                    for statement in setup:
                        conn.exec_driver_sql(statement)
                    started, cpu_started = time.perf_counter(), time.process_time()
                    result = upsert_rows(conn, rows)
                    samples.append((time.perf_counter() - started) * 1000)
                    cpu.append((time.process_time() - cpu_started) * 1000)
                    conn.rollback()
            if result.inserted + result.updated != PAGE_ROWS:
                raise RuntimeError(f"page {label!r} wrote {result}, expected {PAGE_ROWS} rows written")
            results[label][mode] = round(statistics.median(samples[1:]), 2)
            if mode == "with":
                results[label]["client_cpu"] = round(statistics.median(cpu[1:]), 2)
        results[label]["triggers_server"] = round(trigger_ms(engine, rows, repeat), 3)
        figures = results[label]
        print(
            f"page upsert, {label}: p50 {figures['with']} ms ({figures['without']} ms without; client CPU "
            f"{figures['client_cpu']} ms, triggers in the server {figures['triggers_server']} ms)"
        )
    return results


def trigger_ms(engine: sa.Engine, rows: list[UsShortInterestRow], repeat: int) -> float:
    """Median server time the triggers take in one page upsert, from EXPLAIN ANALYZE of its statement."""
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        statements.append((statement, parameters))

    with engine.connect() as conn:
        sa.event.listen(conn, "before_cursor_execute", capture)
        upsert_rows(conn, rows)
        conn.rollback()
    if len(statements) != 1:
        raise RuntimeError(f"a page upsert sent {len(statements)} statements, expected one")
    statement, parameters = statements[0]
    samples = []
    with engine.connect() as conn:
        driver = conn.connection.driver_connection
        for _ in range(repeat + 1):
            with driver.cursor() as cursor:
                cursor.execute(f"EXPLAIN (ANALYZE) {statement}", parameters)
                explained = "\n".join(row[0] for row in cursor.fetchall())
            driver.rollback()
            samples.append(sum(float(ms) for ms in re.findall(r"^Trigger .*: time=([\d.]+)", explained, re.M)))
    return statistics.median(samples[1:])


def measure(url: str, codes: int, repeat: int, *, reference: bool) -> dict[str, Any]:
    engine = create_engine_for(url)
    report: dict[str, Any] = {"queries": {}, "plans": {}, "first_definitions_ms": {}}
    try:
        with engine.connect() as conn:
            report["rows"] = conn.execute(sa.text("SELECT count(*) FROM short_interest")).scalar_one()
            report["codes"] = conn.execute(sa.text("SELECT count(*) FROM short_interest_newest")).scalar_one()
            driver = conn.connection.driver_connection
            measured = queries("short_interest_latest", "short_interest_changes", codes)
            report["queries"], report["plans"] = time_queries(driver, measured, repeat)
            if reference:
                first = queries(f"({_FIRST_LATEST})", f"({_FIRST_CHANGES})", codes)
                for name in ("latest", "movers_up_us", "one_code_us"):
                    sql, params = first[name]
                    median = time_query(driver, sql, params, 0).median_ms
                    report["first_definitions_ms"][name] = round(median, 1)
                    print(f"{name:<16} {median:8.1f} ms  with the first (window) definitions", flush=True)
            conn.rollback()
        report["page_upsert_p50_ms"] = time_pages(engine, repeat * 2)
    finally:
        engine.dispose()
    return report


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    q = report["queries"]
    worst = {
        "latest": q["latest"]["median_ms"],
        "movers": max(v["median_ms"] for k, v in q.items() if k.startswith("movers")),
        "one_code": max(v["median_ms"] for k, v in q.items() if k.startswith("one_code")),
        "page_upsert_p50": max(v["with"] for v in report["page_upsert_p50_ms"].values()),
    }
    best = {
        "latest": q["latest"]["best_ms"],
        "movers": max(v["best_ms"] for k, v in q.items() if k.startswith("movers")),
        "one_code": max(v["best_ms"] for k, v in q.items() if k.startswith("one_code")),
    }
    cpu = {
        "latest": q["latest"]["cpu_ms"],
        "movers": max((v["cpu_ms"] or 0 for k, v in q.items() if k.startswith("movers")), default=None),
        "one_code": max((v["cpu_ms"] or 0 for k, v in q.items() if k.startswith("one_code")), default=None),
    }
    server = {
        "latest": q["latest"]["server_median_ms"],
        "movers": max(v["server_median_ms"] for k, v in q.items() if k.startswith("movers")),
        "one_code": max(v["server_median_ms"] for k, v in q.items() if k.startswith("one_code")),
    }
    met = {k: worst[k] <= TARGET_MS[k] for k in worst}
    figures = {"worst_ms": worst, "best_ms": best, "cpu_ms": cpu, "server_ms": server, "targets_ms": TARGET_MS}
    figures["met"] = met
    return {**figures, "load_average": os.getloadavg()}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--codes", type=int, default=10_000, help="codes in the warehouse, half per market")
    parser.add_argument("--repeat", type=int, default=15, help="timed runs of each query (median)")
    parser.add_argument("--rebuild", action="store_true", help="build the warehouse again even if it exists")
    parser.add_argument("--no-reference", action="store_true", help="skip the first definitions' timings")
    parser.add_argument(
        "--admin-url",
        default=os.environ.get("SHORTINTEREST_TEST_PG_URL", DEFAULT_ADMIN_URL),
        help="superuser URL used to create the benchmark database",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON results")
    args = parser.parse_args(argv)
    if args.codes < 2 or args.repeat < 1:
        parser.error("--codes must be at least 2 and --repeat at least 1")
    url = ensure_warehouse(args.admin_url, args.codes, rebuild=args.rebuild)
    revision = upgrade(url)
    report = {
        "revision": revision,
        "repeat": args.repeat,
        **measure(url, args.codes, args.repeat, reference=not args.no_reference),
    }
    report.update(summarize(report))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(json.dumps({k: report[k] for k in ("worst_ms", "targets_ms", "met")}))
    return report


if __name__ == "__main__":
    main()
