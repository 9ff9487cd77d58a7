"""What a weekly refresh adds to Dagster's storage: one code's materialization, the report, and the whole refresh.

A real PostgreSQL instance storage (deploy/dagster.yaml on a database of its own, with the Dagster settings of
deploy/shortinterest.env) records refreshes as the schedules make them: one run per market over all its codes,
the asset checks in the same step, then the movers report. After a warm-up refresh (the first materialization of
every partition creates rows a later week only updates), two refreshes are measured: one over a quarter of the
codes and one over all of them. The growth of every table and index of the Dagster database (all event types:
runs, planned and recorded materializations, logs, checks, the report) between them splits into a part per code
and a fixed part per refresh, which is extrapolated to 10,000 codes and to a year of weekly refreshes. Dead row
versions are vacuumed before each reading, as autovacuum would between weekly refreshes, and a table that shrank
counts as not grown. Targets: one code's materialization <= 1.5 KB and the report <= 150 KB serialized as Dagster
stores them; a 10,000-code refresh <= 25 MB.

    .venv/bin/python bench/event_log_footprint.py [--codes 200]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import dagster as dg  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from dagster._serdes import serialize_value  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from pipelines.config import RateLimit, Settings  # noqa: E402
from pipelines.orchestration.jobs import asset_key_for  # noqa: E402
from pipelines.orchestration.report import REPORT_KEY, short_interest_report  # noqa: E402
from pipelines.orchestration.resources import WarehouseResource, resources_from_settings  # noqa: E402
from pipelines.orchestration.runner import run_market  # noqa: E402
from pipelines.orchestration.watchlist_sync import sync_partitions  # noqa: E402
from pipelines.warehouse import upgrade  # noqa: E402
from proto_client.security import Market, parse_code  # noqa: E402
from proto_client.simulator.demo_data import demo_codes  # noqa: E402
from tests.support.crawl import load_history  # noqa: E402
from tests.support.databases import fresh_postgres_database  # noqa: E402
from tests.support.gateway import start_gateway  # noqa: E402

DEFAULT_OUTPUT = ROOT / "bench" / "results" / "event_log_footprint.json"
KB = 1024
TARGET_MATERIALIZATION_BYTES = 1.5 * KB
TARGET_REPORT_BYTES = 150 * KB
TARGET_REFRESH_BYTES = 25 * KB * KB
EXTRAPOLATED_CODES = 10_000
WEEKS_PER_YEAR = 52
AS_OF = "2026-05-01"
HIGH_LIMIT = RateLimit(100_000, 1.0)


def _service_dagster_settings() -> dict[str, str]:
    """The Dagster settings the services get from deploy/shortinterest.env, less where the instance lives."""
    settings: dict[str, str] = {}
    for line in (ROOT / "deploy" / "shortinterest.env").read_text(encoding="utf-8").splitlines():
        name, _, value = line.partition("=")
        if name.startswith("DAGSTER_") and name != "DAGSTER_HOME" and not name.startswith("DAGSTER_PG_"):
            settings[name] = value
    return settings


@contextmanager
def _postgres_instance(dagster_url: str, scratch: Path) -> Iterator[dg.DagsterInstance]:
    """A Dagster instance on deploy/dagster.yaml, its DAGSTER_PG_* variables pointing at `dagster_url`, with the
    Dagster settings of deploy/shortinterest.env as the services have them."""
    url = make_url(dagster_url)
    os.environ.update(_service_dagster_settings())
    os.environ.update(
        {
            "DAGSTER_PG_HOST": url.host or "127.0.0.1",
            "DAGSTER_PG_PORT": str(url.port or 5432),
            "DAGSTER_PG_USER": url.username or "postgres",
            "DAGSTER_PG_PASSWORD": url.password or "",
            "DAGSTER_PG_DB": url.database or "",
        }
    )
    home = scratch / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance


def _relation_bytes(engine: sa.Engine) -> dict[str, int]:
    """Every table and index of the Dagster database, after vacuuming dead row versions (as autovacuum would)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM"))
        rows = conn.execute(
            sa.text(
                "SELECT c.relname, "
                "pg_relation_size(c.oid) + COALESCE(pg_total_relation_size(NULLIF(c.reltoastrelid, 0)), 0) "
                "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind IN ('r', 'i') AND n.nspname = 'public'"
            )
        ).all()
    return {str(name): int(size) for name, size in rows}


def _growth(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """What grew, largest first. A relation that shrank (VACUUM truncating pages an earlier refresh freed) counts
    as zero, not as a saving: the refresh did not make it smaller, so the figures err on the large side."""
    grown = {name: size - before.get(name, 0) for name, size in after.items()}
    return {name: size for name, size in sorted(grown.items(), key=lambda kv: -kv[1]) if size > 0}


def _refresh(instance: dg.DagsterInstance, settings: Settings, by_market: dict[Market, list[str]]) -> dict[str, str]:
    """One weekly refresh as the schedules and the report sensor make it; the run ids, by what they did."""
    resources = resources_from_settings(settings)
    runs: dict[str, str] = {}
    for market, codes in by_market.items():
        run = run_market(instance, market, codes, resources, with_checks=True, log_level="INFO")
        if not all(c.ok for c in run.codes):
            raise RuntimeError(f"refresh of {market.prefix} failed: {run.failure}")
        runs[market.prefix] = run.run_id
    report = dg.materialize(
        [short_interest_report],
        instance=instance,
        resources={"warehouse": WarehouseResource(database_url=settings.database_url)},
    )
    if not report.success:
        raise RuntimeError("the report run failed")
    runs["report"] = report.run_id
    return runs


def _largest_materialization(instance: dg.DagsterInstance, run_id: str, key: dg.AssetKey) -> int:
    records = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    sizes = [
        len(serialize_value(r)) for r in records if r.asset_materialization and r.asset_materialization.asset_key == key
    ]
    if not sizes:
        raise RuntimeError(f"run {run_id} materialized nothing of {key.to_user_string()}")
    return max(sizes)


def _event_bytes_by_type(engine: sa.Engine, run_ids: list[str]) -> dict[str, list[int]]:
    """Event type -> [events, bytes of their serialized events] over `run_ids`: where the growth comes from."""
    query = sa.text(
        "SELECT COALESCE(dagster_event_type, 'log message'), COUNT(*), SUM(octet_length(event)) FROM event_logs "
        "WHERE run_id IN :runs GROUP BY 1 ORDER BY 3 DESC"
    ).bindparams(sa.bindparam("runs", expanding=True))
    with engine.connect() as conn:
        return {str(kind): [int(n), int(size)] for kind, n, size in conn.execute(query, {"runs": run_ids})}


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--codes", type=int, default=200, help="codes of the larger refresh (default: %(default)s)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results file")
    args = parser.parse_args(argv)
    named = len(demo_codes())
    if args.codes < 4 * named:
        parser.error(f"--codes must be at least {4 * named} (four times the named demo codes)")

    codes = demo_codes(args.codes - named)
    small = codes[: args.codes // 4]

    def split(chosen: list[str]) -> dict[Market, list[str]]:
        return {m: [c for c in chosen if parse_code(c).market is m] for m in Market}

    with (
        tempfile.TemporaryDirectory(prefix="event_log_footprint_") as scratch,
        fresh_postgres_database("bench_warehouse") as warehouse_url,
        fresh_postgres_database("bench_dagster") as dagster_url,
    ):
        upgrade(warehouse_url)
        gateway = start_gateway(["--rate", "off", "--as-of", AS_OF, "--extra-codes", str(args.codes - named)])
        dagster_engine = sa.create_engine(dagster_url)
        try:
            settings = Settings(
                opend_host=gateway.host, opend_port=gateway.port, rate_limit=HIGH_LIMIT, database_url=warehouse_url
            )
            load_history(settings, codes)
            with _postgres_instance(dagster_url, Path(scratch)) as instance:
                sync_partitions(instance, lambda market: split(codes)[market])
                print("warm-up refresh (not measured) ...", flush=True)
                _refresh(instance, settings, split(codes))
                before = _relation_bytes(dagster_engine)
                _refresh(instance, settings, split(small))
                middle = _relation_bytes(dagster_engine)
                runs = _refresh(instance, settings, split(codes))
                after = _relation_bytes(dagster_engine)
                materialization = _largest_materialization(instance, runs["US"], asset_key_for(Market.US))
                materialization = max(
                    materialization, _largest_materialization(instance, runs["HK"], asset_key_for(Market.HK))
                )
                report = _largest_materialization(instance, runs["report"], REPORT_KEY)
                by_type = _event_bytes_by_type(dagster_engine, list(runs.values()))
        finally:
            dagster_engine.dispose()
            gateway.stop()

    small_growth = sum(_growth(before, middle).values())
    large_growth = sum(_growth(middle, after).values())
    per_code = (large_growth - small_growth) / (len(codes) - len(small))
    fixed = max(0.0, large_growth - per_code * len(codes))
    refresh_10k = fixed + per_code * EXTRAPOLATED_CODES
    results: dict[str, object] = {
        "codes": len(codes),
        "small_refresh_codes": len(small),
        "storage": "postgresql (deploy/dagster.yaml)",
        "dagster_settings": _service_dagster_settings(),
        "materialization_bytes": materialization,
        "report_bytes": report,
        "refresh_growth_bytes": {"small": small_growth, "large": large_growth},
        "large_refresh_growth_by_relation": _growth(middle, after),
        "large_refresh_events_by_type": by_type,
        "bytes_per_code": per_code,
        "fixed_bytes_per_refresh": fixed,
        "extrapolated_codes": EXTRAPOLATED_CODES,
        "refresh_bytes_10k_extrapolated": refresh_10k,
        "year_bytes_10k_extrapolated": refresh_10k * WEEKS_PER_YEAR,
        "materialization_ratio_to_target": materialization / TARGET_MATERIALIZATION_BYTES,
        "report_ratio_to_target": report / TARGET_REPORT_BYTES,
        "refresh_ratio_to_target": refresh_10k / TARGET_REFRESH_BYTES,
        "within_target": (
            materialization <= TARGET_MATERIALIZATION_BYTES
            and report <= TARGET_REPORT_BYTES
            and refresh_10k <= TARGET_REFRESH_BYTES
        ),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
