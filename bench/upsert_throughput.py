"""Upsert throughput against plain COPY on PostgreSQL (a benchmark, not a test).

    .venv/bin/python bench/upsert_throughput.py [--rows 1000000] [--repeat 5] [--admin-url URL]

Loads generated US rows into a throwaway database, each load in one transaction:
  * plain COPY of the rows into an unindexed table (the ceiling the ratios are taken against),
  * for reference, the same COPY into a table of the target's shape (its columns, audit defaults and
    checks) without its key, which tells how much of the gap is the table rather than the upsert,
  * upsert into the empty table (all inserts),
  * upsert of the same rows again (a re-load: all unchanged).
Each round runs the four in that order, the target table emptied first; the figures are medians over the
rounds, so one hiccup of a shared machine does not decide a ratio. Where the URL may run CHECKPOINT, each
load starts from a checkpointed database: otherwise the checkpoint that earlier loads' WAL makes due lands
on whichever load runs then (most often an upsert, the biggest writer), and a ratio measures that timing
rather than the loads. Prints rows/s, the upsert/COPY ratios (target: at least 0.5) and the CPU time each
load took in this process (the client) and in the rest of the machine (the server, when the database is
local), and writes bench/results/upsert_throughput.json.

Where the database runs on this host and the URL is a superuser's, each round also has the server load
the rows from a file itself, with no client at all: into the bare table, and into the target's shape
followed by building its key. An upsert into the empty table cannot take less time than the latter, so
COPY's time over it is the most any client could reach there (the ceiling).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from operator import attrgetter
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from pipelines.warehouse import create_engine_for, upgrade, upsert_batch
from pipelines.warehouse.initial_load import INDEX_BUILD_SETTINGS
from pipelines.warehouse.postgres_upsert import copy_types
from pipelines.warehouse.schema import KEY_COLUMNS, us_short_interest, value_columns
from proto_client.records import UsShortInterestRow
from proto_client.security import Market

DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
RESULTS = Path(__file__).with_name("results") / "upsert_throughput.json"
DATES_PER_CODE = 500
TARGET_RATIO = 0.5
PROC_STAT = Path("/proc/stat")


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


# The target table's columns other than the audit stamps, in its order.
COLUMNS = (*KEY_COLUMNS, *value_columns(us_short_interest))
COLUMN_LIST = ", ".join(COLUMNS)
BARE_TABLE = (
    "CREATE TABLE copy_baseline (code text, trade_date date, source_timestamp int8, shares_short int8, "
    "short_percent float8, avg_daily_share_volume int8, days_to_cover float8, close_price float8, "
    "last_close_price float8)"
)
# The target's columns, audit defaults and checks, without its key: how much of the gap is the table's shape.
SHAPED_TABLE = "CREATE TABLE copy_baseline (LIKE us_short_interest INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"


def copy_baseline(engine: sa.Engine, rows: Sequence[UsShortInterestRow], create: str = BARE_TABLE) -> None:
    """COPY `rows` into a new unindexed table made by `create`, one write_row per row, as a plain loader would."""
    attributes = ["timestamp" if c == "source_timestamp" else c for c in COLUMNS]
    getter = attrgetter(*attributes)
    with engine.begin() as conn:
        conn.exec_driver_sql(create)
        cursor = conn.connection.cursor()
        with cursor.copy(f"COPY copy_baseline ({COLUMN_LIST}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(copy_types(us_short_interest, COLUMNS))
            for row in rows:
                copy.write_row(getter(row))
        cursor.close()


@contextmanager
def server_side_file(engine: sa.Engine, rows: Sequence[UsShortInterestRow]) -> Iterator[Path | None]:
    """The rows as a binary COPY file the server can read, or None if the server cannot (remote, not superuser)."""
    with tempfile.NamedTemporaryFile(prefix="si_bench_", suffix=".copy", dir="/tmp", delete=False) as handle:
        path = Path(handle.name)
    try:
        copy_baseline(engine, rows)
        with engine.begin() as conn, path.open("wb") as out:
            cursor = conn.connection.cursor()
            with cursor.copy(f"COPY copy_baseline ({COLUMN_LIST}) TO STDOUT (FORMAT BINARY)") as copy:
                for block in copy:
                    out.write(block)
            cursor.close()
            conn.exec_driver_sql("DROP TABLE copy_baseline")
        path.chmod(0o644)  # the server's own user reads it
        try:
            with engine.connect() as conn:  # a probe, rolled back
                conn.exec_driver_sql(BARE_TABLE)
                conn.exec_driver_sql(f"COPY copy_baseline ({COLUMN_LIST}) FROM '{path}' (FORMAT BINARY)")
                conn.rollback()
        except sa.exc.DBAPIError:
            yield None
            return
        yield path
    finally:
        path.unlink(missing_ok=True)


def server_copy(engine: sa.Engine, path: Path, create: str, *, with_key: bool) -> None:
    """The server COPYs `path` into a new table made by `create` (and builds the target's key), no client."""
    with engine.begin() as conn:
        conn.exec_driver_sql(create)
        conn.exec_driver_sql(f"COPY copy_baseline ({COLUMN_LIST}) FROM '{path}' (FORMAT BINARY)")
        if with_key:
            for name, value in INDEX_BUILD_SETTINGS.items():
                conn.exec_driver_sql("SELECT set_config(%s, %s, true)", (name, value))
            conn.exec_driver_sql("ALTER TABLE copy_baseline ADD PRIMARY KEY (code, trade_date)")


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


@dataclass(frozen=True)
class Sample:
    """One timed phase: wall seconds, CPU seconds of this process, CPU seconds of the rest of the machine."""

    seconds: float
    client_cpu: float
    other_cpu: float | None


def _machine_cpu_seconds() -> float | None:
    """CPU seconds every core has been busy since boot, or None where /proc/stat is not readable."""
    try:
        first = PROC_STAT.read_text(encoding="ascii").split("\n", 1)[0].split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in first[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def can_checkpoint(engine: sa.Engine) -> bool:
    """Whether this URL may run CHECKPOINT (a superuser, or pg_checkpoint on PostgreSQL 15 and later)."""
    try:
        checkpoint(engine)
    except sa.exc.DBAPIError:
        return False
    return True


def checkpoint(engine: sa.Engine) -> None:
    """Write out every dirty page now, so the next load neither pays for earlier ones nor starts a checkpoint."""
    with engine.connect() as conn:
        conn.exec_driver_sql("CHECKPOINT")


def _measure(work: Callable[[], Any], settle: Callable[[], None] | None = None) -> tuple[Sample, Any]:
    if settle is not None:
        settle()
    machine, client, started = _machine_cpu_seconds(), time.process_time(), time.perf_counter()
    outcome = work()
    seconds = time.perf_counter() - started
    client_cpu = time.process_time() - client
    machine_after = _machine_cpu_seconds()
    other = None if machine is None or machine_after is None else max(0.0, machine_after - machine - client_cpu)
    return Sample(seconds, client_cpu, other), outcome


def _summary(label: str, rows: int, samples: list[Sample]) -> dict[str, Any]:
    seconds = statistics.median(s.seconds for s in samples)
    client_cpu = statistics.median(s.client_cpu for s in samples)
    others = [s.other_cpu for s in samples if s.other_cpu is not None]
    other_cpu = statistics.median(others) if others else None
    rate = rows / seconds
    server = "n/a" if other_cpu is None else f"{other_cpu:5.2f}"
    print(
        f"{label:<20} {rows:>10,} rows  {seconds:6.2f} s  {rate:>10,.0f} rows/s  "
        f"CPU s: client {client_cpu:5.2f}, server and rest {server}  (median of {len(samples)})"
    )
    return {
        "seconds": round(seconds, 3),
        "rows_per_s": round(rate),
        "client_cpu_s": round(client_cpu, 3),
        "other_cpu_s": None if other_cpu is None else round(other_cpu, 3),
        "samples_s": [round(s.seconds, 3) for s in samples],
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to load (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=5, help="rounds of the four loads (default 5)")
    parser.add_argument(
        "--admin-url",
        default=os.environ.get("SHORTINTEREST_TEST_PG_URL", DEFAULT_ADMIN_URL),
        help="superuser URL used to create and drop the throwaway database",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON results")
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error(f"--rows must be positive, got {args.rows}")
    if args.repeat < 1:
        parser.error(f"--repeat must be positive, got {args.repeat}")

    rows = generate_rows(args.rows)
    phases: dict[str, list[Sample]] = {"copy": [], "copy_shaped": [], "upsert_empty": [], "upsert_reload": []}
    results: dict[str, Any] = {}
    with throwaway_database(args.admin_url) as url:
        upgrade(url)
        engine = create_engine_for(url)
        settle = (lambda: checkpoint(engine)) if can_checkpoint(engine) else None
        try:
            with server_side_file(engine, rows) as path:
                for _ in range(args.repeat if path else 0):
                    for phase, create, with_key in (
                        ("server_copy", BARE_TABLE, False),
                        ("server_copy_shaped_keyed", SHAPED_TABLE, True),
                    ):
                        with engine.begin() as conn:
                            conn.exec_driver_sql("DROP TABLE IF EXISTS copy_baseline")
                        work = lambda create=create, with_key=with_key: server_copy(  # noqa: E731
                            engine, path, create, with_key=with_key
                        )
                        phases.setdefault(phase, []).append(_measure(work, settle)[0])
            for _ in range(args.repeat):
                with engine.begin() as conn:
                    conn.exec_driver_sql("TRUNCATE us_short_interest")
                for phase, create in (("copy", BARE_TABLE), ("copy_shaped", SHAPED_TABLE)):
                    with engine.begin() as conn:
                        conn.exec_driver_sql("DROP TABLE IF EXISTS copy_baseline")
                    sample, _ = _measure(lambda create=create: copy_baseline(engine, rows, create), settle)
                    phases[phase].append(sample)
                for phase in ("upsert_empty", "upsert_reload"):
                    sample, results[phase] = _measure(lambda: upsert_batch(engine, rows), settle)
                    phases[phase].append(sample)
        finally:
            engine.dispose()
    labels = {
        "server_copy": "server COPY, bare",
        "server_copy_shaped_keyed": "server COPY+key",
        "copy": "COPY (unindexed)",
        "copy_shaped": "COPY (target shape)",
        "upsert_empty": "upsert into empty",
        "upsert_reload": "upsert re-load",
    }
    report: dict[str, Any] = {"rows": len(rows), "rounds": args.repeat, "checkpoint_before_each_load": bool(settle)}
    if not settle:
        print("no CHECKPOINT before each load (the URL may not run it): checkpoints fall on whichever load is running")
    for phase, samples in phases.items():
        report[phase] = _summary(labels[phase], len(rows), samples)
        if phase in results:
            report[phase]["result"] = _as_dict(results[phase])
    for phase in ("copy_shaped", "upsert_empty", "upsert_reload"):
        ratio = report[phase]["rows_per_s"] / report["copy"]["rows_per_s"]
        report[f"ratio_{phase}_to_copy"] = round(ratio, 3)
    for phase in ("upsert_empty", "upsert_reload"):
        ratio = report[phase]["rows_per_s"] / report["copy_shaped"]["rows_per_s"]
        report[f"ratio_{phase}_to_shaped_copy"] = round(ratio, 3)
    if "server_copy_shaped_keyed" in report:
        ceiling = report["copy"]["seconds"] / report["server_copy_shaped_keyed"]["seconds"]
        report["ceiling_upsert_empty_to_copy"] = round(ceiling, 3)
        print(f"ceiling of upsert into empty / COPY (the server's own work alone): {ceiling:.2f}")
    else:
        print("ceiling of upsert into empty / COPY: not measured (needs a superuser on a database on this host)")
    report["target_ratio"] = TARGET_RATIO
    print(
        f"upsert/COPY: empty {report['ratio_upsert_empty_to_copy']:.2f}, "
        f"re-load {report['ratio_upsert_reload_to_copy']:.2f} (target >= {TARGET_RATIO}); "
        f"against COPY into the target's shape: empty {report['ratio_upsert_empty_to_shaped_copy']:.2f}, "
        f"re-load {report['ratio_upsert_reload_to_shaped_copy']:.2f}"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    return report


def _as_dict(result: Any) -> dict[str, int]:
    return {"inserted": result.inserted, "updated": result.updated, "unchanged": result.unchanged}


if __name__ == "__main__":
    main()
